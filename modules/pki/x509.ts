/**
 * X.509 building blocks shared by nodeforge's certificate resources (node-forge, pure JS, so that the dynamic
 * providers survive Pulumi's closure serialization).
 */
import forge from "node-forge";

/** RSA key size for every key nodeforge generates. */
export const RSA_BITS = 2048;
/** Certificates start a little in the past, so machines with a slightly slow clock accept them at once. */
const BACKDATE_MS = 5 * 60 * 1000;

export function serialNumber(): string {
  // 16 random bytes with the high bit clear: a positive ASN.1 INTEGER (RFC 5280: at most 20 octets).
  const bytes = forge.random.getBytesSync(16);
  return (((bytes.charCodeAt(0) & 0x7f) | 0x40).toString(16) + forge.util.bytesToHex(bytes.slice(1))).padStart(32, "0");
}

export interface KeyPair {
  privateKey: forge.pki.rsa.PrivateKey;
  publicKey: forge.pki.rsa.PublicKey;
}

export interface Issued {
  cert: string;
  key: string;
}

export function newCertificate(
  subject: forge.pki.CertificateField[],
  days: number,
  keys: KeyPair,
  now: number,
): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serialNumber();
  cert.validity.notBefore = new Date(now - BACKDATE_MS);
  cert.validity.notAfter = new Date(now + days * 24 * 3600 * 1000);
  cert.setSubject(subject);
  return cert;
}
