/**
 * Host key pinning: every SSH connection nodeforge opens verifies the machine's host key against the key
 * written in the stack file (or captured when nodeforge created the VM). There is no trust-on-first-use.
 */
import { createHash } from "node:crypto";

/**
 * Host key types that can be pinned, each with the server host key algorithms that present such a key.
 * An RSA key is one blob shown under three signature algorithms; the SHA-2 ones come first.
 */
const PRESENTING_ALGORITHMS: Readonly<Record<string, readonly string[]>> = {
  "ssh-ed25519": ["ssh-ed25519"],
  "ecdsa-sha2-nistp256": ["ecdsa-sha2-nistp256"],
  "ecdsa-sha2-nistp384": ["ecdsa-sha2-nistp384"],
  "ecdsa-sha2-nistp521": ["ecdsa-sha2-nistp521"],
  "ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
};

/** Server host key algorithms in the order `nodeforge hostkeys` prefers them: ed25519, then ecdsa, then rsa. */
export const SCAN_PREFERENCE: readonly string[] = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "rsa-sha2-512",
  "rsa-sha2-256",
  "ssh-rsa",
];

/** The server host key algorithms that present a key of this (pinnable) type. */
export function presentingAlgorithms(type: string): string[] {
  if (!Object.hasOwn(PRESENTING_ALGORITHMS, type))
    throw new Error(`host key type ${JSON.stringify(type)} is not supported`);
  return [...PRESENTING_ALGORITHMS[type]];
}

/** The `<type> <base64>` line for a public key blob, as a stack file's hostKey takes it. */
export function hostKeyLine(blob: Buffer): string {
  return `${blobKeyType(blob)} ${blob.toString("base64")}`;
}

/** A parsed pinned host key: its type, the raw public key blob and its OpenSSH SHA256 fingerprint. */
export interface PinnedHostKey {
  type: string;
  blob: Buffer;
  /** `SHA256:<unpadded base64>`, the form `ssh-keygen -lf` and sshd logs print. */
  fingerprint: string;
}

/** Raised when a machine presents a host key other than the pinned one; the connection is refused. */
export class HostKeyMismatchError extends Error {
  constructor(
    readonly machine: string,
    readonly address: string,
    readonly expected: string,
    readonly presented: string,
    readonly presentedType: string,
  ) {
    const message =
      `${machine}: host key mismatch for ${address}: expected ${expected}, presented ${presented} ` +
      `(${presentedType}); refusing to connect`;
    super(message);
    // Dynamic providers reach the engine through Pulumi's closure serializer, which turns `super(...)` into
    // `Error.call(this, ...)`: that sets nothing on `this`, so the message is set here (else it reads "undefined").
    this.message = message;
    this.name = "HostKeyMismatchError";
  }
}

/** OpenSSH's SHA256 fingerprint of a public key blob. */
export function fingerprintOf(blob: Buffer): string {
  return "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

/** Splits an SSH wire-format blob into its length-prefixed fields; throws unless they fill it exactly. */
function wireFields(blob: Buffer): Buffer[] {
  const fields: Buffer[] = [];
  let offset = 0;
  while (offset < blob.length) {
    if (offset + 4 > blob.length) throw new Error("truncated field length");
    const length = blob.readUInt32BE(offset);
    offset += 4;
    if (offset + length > blob.length) throw new Error("truncated field");
    fields.push(blob.subarray(offset, offset + length));
    offset += length;
  }
  return fields;
}

/** The key type a wire-format blob declares (its first field), or "unknown" for something unreadable. */
export function blobKeyType(blob: Buffer): string {
  try {
    const [first] = wireFields(blob);
    return first ? first.toString("latin1") : "unknown";
  } catch {
    return "unknown";
  }
}

/** Checks the blob's fields have the shape its key type requires, so a garbled key is rejected up front. */
function checkBlobShape(type: string, fields: Buffer[]): void {
  const shapeError = (what: string): Error => new Error(`${type} key blob ${what}`);
  if (type === "ssh-ed25519") {
    if (fields.length !== 2 || fields[1].length !== 32) throw shapeError("must hold one 32-byte public key");
  } else if (type === "ssh-rsa") {
    if (fields.length !== 3 || fields[1].length === 0 || fields[2].length < 64) {
      throw shapeError("must hold an exponent and a modulus");
    }
  } else {
    const curve = type.slice("ecdsa-sha2-".length);
    if (fields.length !== 3 || fields[1].toString("latin1") !== curve || fields[2][0] !== 0x04) {
      throw shapeError(`must hold curve ${curve} and an uncompressed point`);
    }
  }
}

/** Parses `<type> <base64> [comment]` (the known_hosts key part). Throws a descriptive error on anything else. */
export function parseHostKey(line: string): PinnedHostKey {
  const parts = line.trim().split(/\s+/);
  if (parts.length < 2 || parts[0] === "")
    throw new Error(`host key must be "<type> <base64>", got ${parts.length} field(s)`);
  const [type, encoded] = parts;
  if (!Object.hasOwn(PRESENTING_ALGORITHMS, type)) {
    throw new Error(
      `host key type ${JSON.stringify(type)} is not supported (use one of ${Object.keys(PRESENTING_ALGORITHMS).join(", ")})`,
    );
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || encoded.length % 4 !== 0) {
    throw new Error(`host key data for ${type} is not valid base64`);
  }
  const blob = Buffer.from(encoded, "base64");
  let fields: Buffer[];
  try {
    fields = wireFields(blob);
  } catch (error) {
    throw new Error(`host key data for ${type} is not an SSH public key: ${(error as Error).message}`);
  }
  const declared = fields[0]?.toString("latin1");
  if (declared !== type)
    throw new Error(`host key data declares type ${JSON.stringify(declared)}, the line says ${type}`);
  checkBlobShape(type, fields);
  return { type, blob, fingerprint: fingerprintOf(blob) };
}

/** The ssh2 connect options that enforce a pinned host key, plus what the server presented if it was refused. */
export interface HostKeyVerification {
  pinned: PinnedHostKey;
  options: {
    hostVerifier: (key: Buffer) => boolean;
    algorithms: { serverHostKey: string[] };
  };
  /** The mismatch seen during the handshake, if the verifier refused a key. */
  mismatch(): HostKeyMismatchError | undefined;
}

/**
 * Builds the verifier for one connection attempt. The algorithm list is restricted to the pinned key's type
 * so a server with several host keys presents the pinned one instead of its preferred one.
 */
export function hostKeyVerification(machine: string, address: string, hostKey: string): HostKeyVerification {
  const pinned = parseHostKey(hostKey);
  let refused: HostKeyMismatchError | undefined;
  return {
    pinned,
    options: {
      hostVerifier: (key: Buffer) => {
        if (Buffer.isBuffer(key) && key.equals(pinned.blob)) return true;
        const presented = Buffer.isBuffer(key) ? key : Buffer.alloc(0);
        refused = new HostKeyMismatchError(
          machine,
          address,
          pinned.fingerprint,
          fingerprintOf(presented),
          blobKeyType(presented),
        );
        return false;
      },
      algorithms: { serverHostKey: [...PRESENTING_ALGORITHMS[pinned.type]] },
    },
    mismatch: () => refused,
  };
}
