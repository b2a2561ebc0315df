/**
 * ClusterPki: the Kubernetes cluster's own certificate authorities and kubeadm bootstrap secrets, generated once on
 * `pulumi up` and kept in Pulumi state.
 *
 * nodeforge places the CAs on every control-plane machine before `kubeadm init` or `kubeadm join` (kubeadm keeps CA
 * files it finds; a joining control plane then needs no certificates uploaded by init, which kubeadm deletes after
 * two hours), so the program knows, without reading anything back from a machine:
 * - the CA cert hash that `kubeadm join --discovery-token-ca-cert-hash` expects (`caCertHash`);
 * - an admin client certificate for a kubeconfig (see kubeconfig.ts);
 * - the bootstrap token for joins.
 *
 * What it generates (RSA 2048 keys, like EtcdPki):
 * - three CAs valid CA_VALIDITY_DAYS (10 years), as kubeadm names them: `kubernetes` (ca.crt), `front-proxy-ca`
 *   (front-proxy-ca.crt) and `etcd-ca` (etcd/ca.crt, stacked etcd);
 * - the service-account signing key pair (sa.key, PKCS#1 RSA private key; sa.pub, PKIX public key);
 * - an admin client certificate (CN `kubernetes-admin`, O `kubeadm:cluster-admins`, clientAuth) signed by the
 *   Kubernetes CA, valid ADMIN_VALIDITY_DAYS (1 year, kubeadm's leaf lifetime). Renewal is a known limit;
 * - a bootstrap token (`[a-z0-9]{6}.[a-z0-9]{16}`).
 *
 * Nothing is regenerated on a later run: `diff` reports no change while the cluster name stays; a new cluster name
 * replaces the whole PKI. A bootstrap token expires in the cluster (kubeadm's default TTL is 24 h): whoever joins
 * later must (re)create it there with `kubeadm token create <token>`; the value here stays the same.
 *
 * A Pulumi dynamic provider like EtcdPki (etcd-pki.ts): the engine ships `clusterPkiProvider` through closure
 * serialization, so its methods use only functions, constants, node-forge and node:crypto (imported by name, so the
 * serializer sees the module object and emits a require). Every private key and the token are
 * Pulumi secrets (`additionalSecretOutputs`, and wrapped with `pulumi.secret` so they are secret also where no engine
 * applies that option, e.g. under Pulumi's unit-test mocks).
 */
import { createHash, createPublicKey, randomBytes } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import forge from "node-forge";
import { newCertificate, RSA_BITS, type Issued } from "./x509";
import { providerReference } from "../provider-reference";

/** Days the cluster CAs are valid (10 years, as kubeadm's). */
export const CLUSTER_CA_VALIDITY_DAYS = 3650;
/** Days the admin client certificate is valid (1 year, as kubeadm's leaf certificates). */
export const ADMIN_VALIDITY_DAYS = 365;
/** Common name of the admin client certificate (kubeadm's admin.conf user). */
export const ADMIN_COMMON_NAME = "kubernetes-admin";
/** Organization of the admin client certificate: kubeadm (1.29+) binds this group to cluster-admin. */
export const ADMIN_ORGANIZATION = "kubeadm:cluster-admins";
const TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/** What the provider receives. */
export interface ClusterPkiInputs {
  /** Cluster name (an RFC 1123 label): part of the resource id; changing it replaces the PKI. */
  clusterName: string;
}

/** The state Pulumi records. Private keys and `bootstrapToken` are secrets. */
export interface ClusterPkiOutputs extends ClusterPkiInputs {
  caCert: string;
  caKey: string;
  frontProxyCaCert: string;
  frontProxyCaKey: string;
  etcdCaCert: string;
  etcdCaKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
  bootstrapToken: string;
  caCertHash: string;
  adminCert: string;
  adminKey: string;
}

const NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function inputFailures(news: ClusterPkiInputs): { property: string; reason: string }[] {
  if (typeof news.clusterName === "string" && !NAME.test(news.clusterName)) {
    return [{ property: "clusterName", reason: `${JSON.stringify(news.clusterName)} is not an RFC 1123 label` }];
  }
  return [];
}

/**
 * kubeadm's discovery hash of a CA certificate: `sha256:` and the hex SHA-256 of its DER SubjectPublicKeyInfo, what
 * `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | sha256sum` prints.
 */
export function caCertHash(caCertPem: string): string {
  const spki = createPublicKey(caCertPem).export({ type: "spki", format: "der" });
  return `sha256:${createHash("sha256").update(spki).digest("hex")}`;
}

/** `length` characters of [a-z0-9], uniformly random (bytes >= 252 are rejected, 252 = 7 * 36). */
function randomLowerAlnum(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 252 && out.length < length) out += TOKEN_ALPHABET[byte % 36];
    }
  }
  return out;
}

/** A kubeadm bootstrap token: `[a-z0-9]{6}.[a-z0-9]{16}` (token id, token secret). */
function newBootstrapToken(): string {
  return `${randomLowerAlnum(6)}.${randomLowerAlnum(16)}`;
}

/** A self-signed CA with the given common name (the only subject attribute, as kubeadm's CAs have). */
function createCa(commonName: string, now: number): Issued {
  const keys = forge.pki.rsa.generateKeyPair({ bits: RSA_BITS });
  const subject = [{ name: "commonName", value: commonName }];
  const cert = newCertificate(subject, CLUSTER_CA_VALIDITY_DAYS, keys, now);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    {
      name: "keyUsage",
      keyCertSign: true,
      cRLSign: true,
      digitalSignature: true,
      keyEncipherment: true,
      critical: true,
    },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(keys.privateKey) };
}

/** The admin client certificate (clientAuth), signed by the Kubernetes CA. */
export function issueAdmin(ca: Issued, now: number): Issued {
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const caKey = forge.pki.privateKeyFromPem(ca.key);
  const keys = forge.pki.rsa.generateKeyPair({ bits: RSA_BITS });
  const cert = newCertificate(
    [
      { name: "organizationName", value: ADMIN_ORGANIZATION },
      { name: "commonName", value: ADMIN_COMMON_NAME },
    ],
    ADMIN_VALIDITY_DAYS,
    keys,
    now,
  );
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", clientAuth: true },
    {
      name: "authorityKeyIdentifier",
      keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes(),
    },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(keys.privateKey) };
}

/** The service-account signing key pair: sa.key (PKCS#1 RSA private key) and sa.pub (PKIX public key). */
function createServiceAccountKeys(): { key: string; pub: string } {
  const keys = forge.pki.rsa.generateKeyPair({ bits: RSA_BITS });
  return { key: forge.pki.privateKeyToPem(keys.privateKey), pub: forge.pki.publicKeyToPem(keys.publicKey) };
}

/**
 * Generates what `olds` lacks and keeps everything it has (an update never regenerates recorded material; the admin
 * certificate is reissued only when the CA it was signed by is new).
 */
function converge(news: ClusterPkiInputs, olds?: Partial<ClusterPkiOutputs>): ClusterPkiOutputs {
  const now = Date.now();
  const keep = (cert?: string, key?: string): Issued | undefined => (cert && key ? { cert, key } : undefined);
  const ca = keep(olds?.caCert, olds?.caKey) ?? createCa("kubernetes", now);
  const frontProxy = keep(olds?.frontProxyCaCert, olds?.frontProxyCaKey) ?? createCa("front-proxy-ca", now);
  const etcd = keep(olds?.etcdCaCert, olds?.etcdCaKey) ?? createCa("etcd-ca", now);
  const admin = (olds?.caCert === ca.cert ? keep(olds?.adminCert, olds?.adminKey) : undefined) ?? issueAdmin(ca, now);
  const sa =
    olds?.serviceAccountKey && olds.serviceAccountPub
      ? { key: olds.serviceAccountKey, pub: olds.serviceAccountPub }
      : createServiceAccountKeys();
  return {
    clusterName: news.clusterName,
    caCert: ca.cert,
    caKey: ca.key,
    frontProxyCaCert: frontProxy.cert,
    frontProxyCaKey: frontProxy.key,
    etcdCaCert: etcd.cert,
    etcdCaKey: etcd.key,
    serviceAccountKey: sa.key,
    serviceAccountPub: sa.pub,
    bootstrapToken: olds?.bootstrapToken || newBootstrapToken(),
    caCertHash: caCertHash(ca.cert),
    adminCert: admin.cert,
    adminKey: admin.key,
  };
}

/** The provider's methods with precise result types. */
export interface ClusterPkiProvider {
  check(olds: ClusterPkiInputs, news: ClusterPkiInputs): Promise<pulumi.dynamic.CheckResult<ClusterPkiInputs>>;
  diff(id: string, olds: ClusterPkiOutputs, news: ClusterPkiInputs): Promise<pulumi.dynamic.DiffResult>;
  create(inputs: ClusterPkiInputs): Promise<{ id: string; outs: ClusterPkiOutputs }>;
  read(id: string, props: ClusterPkiOutputs): Promise<{ id: string; props: ClusterPkiOutputs }>;
  update(id: string, olds: ClusterPkiOutputs, news: ClusterPkiInputs): Promise<{ outs: ClusterPkiOutputs }>;
  delete(id: string, props: ClusterPkiOutputs): Promise<void>;
}

/** The dynamic provider behind ClusterPki. Exported so tests can drive it directly and after serialization. */
export const clusterPkiProvider: ClusterPkiProvider = {
  async check(_olds, news) {
    const failures = inputFailures(news);
    return failures.length > 0 ? { inputs: news, failures } : { inputs: news };
  },
  async diff(_id, olds, news) {
    if (olds.clusterName !== news.clusterName) {
      return { changes: true, replaces: ["clusterName"], deleteBeforeReplace: false };
    }
    return { changes: false, replaces: [] };
  },
  async create(inputs) {
    return { id: `${inputs.clusterName}-cluster-pki`, outs: converge(inputs) };
  },
  // Nothing lives outside the state: what was recorded is what there is.
  async read(id, props) {
    return { id, props };
  },
  // Only reached if the engine updates without a diff's say-so: keeps everything recorded.
  async update(_id, olds, news) {
    return { outs: converge(news, olds) };
  },
  async delete() {
    // Nothing to remove: the material lives only in Pulumi state (and in the machines' files).
  },
};

/** Arguments of a ClusterPki resource. */
export interface ClusterPkiArgs {
  clusterName: pulumi.Input<string>;
}

/** Outputs of ClusterPki that are Pulumi secrets. */
export const CLUSTER_PKI_SECRET_OUTPUTS = [
  "caKey",
  "frontProxyCaKey",
  "etcdCaKey",
  "serviceAccountKey",
  "bootstrapToken",
  "adminKey",
] as const;

/** The cluster's CAs, service-account keys, admin certificate and join secrets (see the module comment). */
export class ClusterPki extends pulumi.dynamic.Resource {
  declare readonly clusterName: pulumi.Output<string>;
  declare readonly caCert: pulumi.Output<string>;
  declare readonly caKey: pulumi.Output<string>;
  declare readonly frontProxyCaCert: pulumi.Output<string>;
  declare readonly frontProxyCaKey: pulumi.Output<string>;
  declare readonly etcdCaCert: pulumi.Output<string>;
  declare readonly etcdCaKey: pulumi.Output<string>;
  declare readonly serviceAccountKey: pulumi.Output<string>;
  declare readonly serviceAccountPub: pulumi.Output<string>;
  declare readonly bootstrapToken: pulumi.Output<string>;
  declare readonly caCertHash: pulumi.Output<string>;
  declare readonly adminCert: pulumi.Output<string>;
  declare readonly adminKey: pulumi.Output<string>;

  constructor(name: string, args: ClusterPkiArgs, opts?: pulumi.CustomResourceOptions) {
    const props = {
      clusterName: args.clusterName,
      caCert: undefined,
      caKey: undefined,
      frontProxyCaCert: undefined,
      frontProxyCaKey: undefined,
      etcdCaCert: undefined,
      etcdCaKey: undefined,
      serviceAccountKey: undefined,
      serviceAccountPub: undefined,
      bootstrapToken: undefined,
      caCertHash: undefined,
      adminCert: undefined,
      adminKey: undefined,
    };
    const options = pulumi.mergeOptions(opts, { additionalSecretOutputs: [...CLUSTER_PKI_SECRET_OUTPUTS] });
    super(providerReference(clusterPkiProvider, "clusterPkiProvider"), name, props, options, "nodeforge", "ClusterPki");
    // The engine marks these secret (additionalSecretOutputs); wrapping them also keeps them secret where no engine
    // does (unit-test mocks) and in anything derived from them.
    const self = this as unknown as Record<string, pulumi.Output<string>>;
    for (const key of CLUSTER_PKI_SECRET_OUTPUTS) self[key] = pulumi.secret(self[key]!);
  }
}

/** Generates a complete cluster PKI without Pulumi (tests, `nodeforge render`): what `create` records. */
export function generateClusterPki(inputs: ClusterPkiInputs): ClusterPkiOutputs {
  return converge(inputs);
}
