/**
 * EtcdPki: the certificates of one external etcd cluster, generated once on `pulumi up` and kept in Pulumi state.
 *
 * - a CA (RSA 2048, 10 years) that signs everything below and that every member and client trusts;
 * - per member one certificate used both as server (clients) and peer (other members) certificate, so its extended
 *   key usage is serverAuth + clientAuth, SANs: the member's name, its IP address, 127.0.0.1 and localhost;
 * - one client certificate (clientAuth) for the API servers and etcdctl.
 *
 * Leaf certificates are valid for LEAF_VALIDITY_DAYS (2 years). Renewal is a known limit: nothing renews them yet;
 * a member whose address changes, or a new member, gets a new certificate on the next `pulumi up` (update, not
 * replace), everything else is kept as issued. Changing the cluster name replaces the whole PKI (a new CA).
 *
 * A Pulumi dynamic provider like RemoteFile (modules/remote/remote-file.ts): the engine ships `etcdPkiProvider`
 * through closure serialization, so its methods use only functions, constants and the npm module node-forge
 * (pure JavaScript; it generates RSA keys with Node's native crypto when available). Every private key is a
 * Pulumi secret (`additionalSecretOutputs`).
 */
import * as pulumi from "@pulumi/pulumi";
import forge from "node-forge";
import { newCertificate, RSA_BITS, type Issued } from "./x509";
import { providerReference } from "../provider-reference";

/** Days the CA is valid. */
export const CA_VALIDITY_DAYS = 3650;
/** Days member and client certificates are valid (renewal: see the module comment). */
export const LEAF_VALIDITY_DAYS = 730;

/** One etcd member as the certificates see it. */
export interface EtcdPkiMember {
  /** Member name (also a DNS SAN), e.g. `etcd-1`. */
  name: string;
  /** The member's IP address (an IP SAN; peers and clients connect to it). */
  address: string;
}

/** What the provider receives. */
export interface EtcdPkiInputs {
  /** Cluster name: part of the CA's and the client's common names. */
  clusterName: string;
  members: EtcdPkiMember[];
}

/** A member's certificate (PEM) and the address it was issued for. */
export interface EtcdMemberCertificate {
  address: string;
  cert: string;
}

/** The state Pulumi records. `caKey`, `clientKey` and `memberKeys` are secrets. */
export interface EtcdPkiOutputs extends EtcdPkiInputs {
  caCert: string;
  caKey: string;
  clientCert: string;
  clientKey: string;
  /** Member name -> certificate (PEM): public. */
  memberCerts: Record<string, EtcdMemberCertificate>;
  /** Member name -> private key (PEM, PKCS#1 RSA): secret. */
  memberKeys: Record<string, string>;
}

/** The material one member's files need (see modules/etcd). */
export interface EtcdPkiMaterial {
  caCert: string;
  clientCert: string;
  clientKey: string;
  memberCerts: Record<string, EtcdMemberCertificate>;
  memberKeys: Record<string, string>;
}

const NAME = /^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/;
const IPV4 = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/;

function inputFailures(news: EtcdPkiInputs): { property: string; reason: string }[] {
  const failures: { property: string; reason: string }[] = [];
  if (typeof news.clusterName === "string" && !NAME.test(news.clusterName)) {
    failures.push({ property: "clusterName", reason: `${JSON.stringify(news.clusterName)} is not a DNS label` });
  }
  if (!Array.isArray(news.members)) return failures;
  if (news.members.length === 0) failures.push({ property: "members", reason: "at least one member is needed" });
  const seen = new Set<string>();
  news.members.forEach((member, index) => {
    if (typeof member?.name !== "string" || !NAME.test(member.name)) {
      failures.push({ property: "members", reason: `members[${index}].name is not a DNS name` });
    } else if (seen.has(member.name)) {
      failures.push({ property: "members", reason: `members[${index}].name '${member.name}' is not unique` });
    } else seen.add(member.name);
    // IPv4 only for now: an IPv6 address would need brackets in etcd's URLs (see modules/etcd).
    if (typeof member?.address !== "string" || !IPV4.test(member.address)) {
      failures.push({ property: "members", reason: `members[${index}].address is not an IPv4 address` });
    }
  });
  return failures;
}

function createCa(clusterName: string, now: number): Issued {
  const keys = forge.pki.rsa.generateKeyPair({ bits: RSA_BITS });
  const subject = [
    { name: "commonName", value: `${clusterName}-etcd-ca` },
    { name: "organizationName", value: "nodeforge" },
  ];
  const cert = newCertificate(subject, CA_VALIDITY_DAYS, keys, now);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(keys.privateKey) };
}

/** A leaf certificate signed by the CA: a member's (serverAuth + clientAuth, with SANs) or the client's. */
function issueLeaf(
  ca: Issued,
  commonName: string,
  usage: { serverAuth: boolean; clientAuth: boolean },
  sans: { dns: string[]; ips: string[] },
  now: number,
): Issued {
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const caKey = forge.pki.privateKeyFromPem(ca.key);
  const keys = forge.pki.rsa.generateKeyPair({ bits: RSA_BITS });
  const cert = newCertificate(
    [
      { name: "commonName", value: commonName },
      { name: "organizationName", value: "nodeforge" },
    ],
    LEAF_VALIDITY_DAYS,
    keys,
    now,
  );
  cert.setIssuer(caCert.subject.attributes);
  const extensions: object[] = [
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", ...usage },
    { name: "subjectKeyIdentifier" },
    {
      name: "authorityKeyIdentifier",
      keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes(),
    },
  ];
  if (sans.dns.length + sans.ips.length > 0) {
    extensions.push({
      name: "subjectAltName",
      altNames: [...sans.dns.map((value) => ({ type: 2, value })), ...sans.ips.map((ip) => ({ type: 7, ip }))],
    });
  }
  cert.setExtensions(extensions);
  cert.sign(caKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(keys.privateKey) };
}

function issueMember(ca: Issued, member: EtcdPkiMember, now: number): Issued {
  const dns = [...new Set([member.name, "localhost"])];
  const ips = [...new Set([member.address, "127.0.0.1"])];
  return issueLeaf(ca, member.name, { serverAuth: true, clientAuth: true }, { dns, ips }, now);
}

/**
 * Issues what `news` needs that `olds` lacks: the CA and client certificate only when there are none, a member
 * certificate only for a member that is new or whose address changed. Removed members' certificates are dropped.
 */
function converge(news: EtcdPkiInputs, olds?: EtcdPkiOutputs): EtcdPkiOutputs {
  const now = Date.now();
  const ca: Issued =
    olds?.caCert && olds.caKey ? { cert: olds.caCert, key: olds.caKey } : createCa(news.clusterName, now);
  const client: Issued =
    olds?.clientCert && olds.clientKey && olds.caCert === ca.cert
      ? { cert: olds.clientCert, key: olds.clientKey }
      : issueLeaf(
          ca,
          `${news.clusterName}-etcd-client`,
          { serverAuth: false, clientAuth: true },
          { dns: [], ips: [] },
          now,
        );
  const memberCerts: Record<string, EtcdMemberCertificate> = {};
  const memberKeys: Record<string, string> = {};
  for (const member of news.members) {
    const old = olds?.memberCerts?.[member.name];
    const oldKey = olds?.memberKeys?.[member.name];
    if (old && oldKey && old.address === member.address && olds?.caCert === ca.cert) {
      memberCerts[member.name] = old;
      memberKeys[member.name] = oldKey;
    } else {
      const issued = issueMember(ca, member, now);
      memberCerts[member.name] = { address: member.address, cert: issued.cert };
      memberKeys[member.name] = issued.key;
    }
  }
  return {
    clusterName: news.clusterName,
    members: news.members.map((m) => ({ name: m.name, address: m.address })),
    caCert: ca.cert,
    caKey: ca.key,
    clientCert: client.cert,
    clientKey: client.key,
    memberCerts,
    memberKeys,
  };
}

/** Which members `news` adds, drops or re-addresses compared to the recorded state. */
function memberChanges(olds: EtcdPkiOutputs, news: EtcdPkiInputs): string[] {
  const changed: string[] = [];
  const wanted = new Map(news.members.map((m) => [m.name, m.address]));
  for (const [name, address] of wanted) {
    if (olds.memberCerts?.[name]?.address !== address) changed.push(name);
  }
  for (const name of Object.keys(olds.memberCerts ?? {})) if (!wanted.has(name)) changed.push(name);
  return changed;
}

/** The provider's methods with precise result types. */
export interface EtcdPkiProvider {
  check(olds: EtcdPkiInputs, news: EtcdPkiInputs): Promise<pulumi.dynamic.CheckResult<EtcdPkiInputs>>;
  diff(id: string, olds: EtcdPkiOutputs, news: EtcdPkiInputs): Promise<pulumi.dynamic.DiffResult>;
  create(inputs: EtcdPkiInputs): Promise<{ id: string; outs: EtcdPkiOutputs }>;
  read(id: string, props: EtcdPkiOutputs): Promise<{ id: string; props: EtcdPkiOutputs }>;
  update(id: string, olds: EtcdPkiOutputs, news: EtcdPkiInputs): Promise<{ outs: EtcdPkiOutputs }>;
  delete(id: string, props: EtcdPkiOutputs): Promise<void>;
}

/** The dynamic provider behind EtcdPki. Exported so tests can drive it directly and after serialization. */
export const etcdPkiProvider: EtcdPkiProvider = {
  async check(_olds, news) {
    const failures = inputFailures(news);
    return failures.length > 0 ? { inputs: news, failures } : { inputs: news };
  },
  async diff(_id, olds, news) {
    if (olds.clusterName !== news.clusterName) {
      return { changes: true, replaces: ["clusterName"], deleteBeforeReplace: false };
    }
    const members = memberChanges(olds, news);
    const order = JSON.stringify(olds.members) !== JSON.stringify(news.members);
    return { changes: members.length > 0 || order, replaces: [] };
  },
  async create(inputs) {
    return { id: `${inputs.clusterName}-etcd-pki`, outs: converge(inputs) };
  },
  // Nothing lives outside the state: what was recorded is what there is.
  async read(id, props) {
    return { id, props };
  },
  async update(_id, olds, news) {
    return { outs: converge(news, olds) };
  },
  async delete() {
    // Nothing to remove: the certificates live only in Pulumi state (and in the members' files).
  },
};

/** Arguments of an EtcdPki resource. */
export interface EtcdPkiArgs {
  clusterName: pulumi.Input<string>;
  members: pulumi.Input<pulumi.Input<EtcdPkiMember>[]>;
}

/** The certificates of one external etcd cluster (see the module comment); private keys are secrets. */
export class EtcdPki extends pulumi.dynamic.Resource {
  declare readonly clusterName: pulumi.Output<string>;
  declare readonly members: pulumi.Output<EtcdPkiMember[]>;
  declare readonly caCert: pulumi.Output<string>;
  declare readonly caKey: pulumi.Output<string>;
  declare readonly clientCert: pulumi.Output<string>;
  declare readonly clientKey: pulumi.Output<string>;
  declare readonly memberCerts: pulumi.Output<Record<string, EtcdMemberCertificate>>;
  declare readonly memberKeys: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: EtcdPkiArgs, opts?: pulumi.CustomResourceOptions) {
    const props = {
      clusterName: args.clusterName,
      members: args.members,
      caCert: undefined,
      caKey: undefined,
      clientCert: undefined,
      clientKey: undefined,
      memberCerts: undefined,
      memberKeys: undefined,
    };
    const options = pulumi.mergeOptions(opts, { additionalSecretOutputs: ["caKey", "clientKey", "memberKeys"] });
    super(providerReference(etcdPkiProvider, "etcdPkiProvider"), name, props, options, "nodeforge", "EtcdPki");
  }
}

/** Generates a complete PKI without Pulumi (tests, `nodeforge render`): what `create` records. */
export function generateEtcdPki(inputs: EtcdPkiInputs): EtcdPkiOutputs {
  return converge(inputs);
}
