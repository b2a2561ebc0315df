/**
 * One member of an external etcd cluster on a dedicated machine, as a step-like unit of work: the files it owns
 * (certificates, keys, etcd's configuration, the systemd unit `nodeforge-etcd.service`), the idempotent script that
 * installs the pinned etcd release (its tarball verified by sha256) and starts the member, and the delete script. Like a step (modules/steps), it knows
 * nothing of Pulumi or SSH; it is not in STEPS (the components wire it).
 *
 * Layout on the machine:
 *
 *     /etc/etcd/pki/ca.crt                      the cluster CA (0644)
 *     /etc/etcd/pki/member.crt, member.key      server + peer certificate and key (key root:root 0600; the unit
 *                                               hands etcd a copy through systemd's LoadCredential)
 *     /etc/etcd/pki/client.crt, client.key      client certificate for etcdctl on the machine (root:root 0600)
 *     /etc/etcd/nodeforge-etcd.yaml             etcd --config-file: URLs on https, client and peer cert auth
 *     /etc/systemd/system/nodeforge-etcd.service
 *     /usr/local/bin/etcd, etcdctl, etcdutl     from the release tarball; the `etcd` system user runs the member
 *     /var/lib/etcd/<cluster>                   data directory (systemd StateDirectory, owner etcd, 0700)
 */
import { debian12, type OsProfile } from "../os";
import { DEFAULT_PINS, type Pins } from "../pins";
import type { EtcdPkiMaterial } from "../pki";
import { render } from "../render";
import { filesHash, ownedPaths, rootFile, type ManagedFile, type StepUnit, STATE_DIR, scriptValues } from "../steps";
import type { EtcdMachineSpec, StackSpec } from "../stack";

export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
export const ETCD_PKI_DIR = "/etc/etcd/pki";
export const ETCD_CA_FILE = `${ETCD_PKI_DIR}/ca.crt`;
export const ETCD_MEMBER_CERT_FILE = `${ETCD_PKI_DIR}/member.crt`;
export const ETCD_MEMBER_KEY_FILE = `${ETCD_PKI_DIR}/member.key`;
export const ETCD_CLIENT_CERT_FILE = `${ETCD_PKI_DIR}/client.crt`;
export const ETCD_CLIENT_KEY_FILE = `${ETCD_PKI_DIR}/client.key`;
export const ETCD_CONFIG_FILE = "/etc/etcd/nodeforge-etcd.yaml";
export const ETCD_UNIT_NAME = "nodeforge-etcd.service";
export const ETCD_UNIT_FILE = `/etc/systemd/system/${ETCD_UNIT_NAME}`;
/** Where the release's programs go: etcd, etcdctl (the health check, and operators) and etcdutl. */
export const ETCD_BIN_DIR = "/usr/local/bin";
export const ETCD_PROGRAMS = ["etcd", "etcdctl", "etcdutl"] as const;
export const ETCD_BINARY = `${ETCD_BIN_DIR}/etcd`;
export const ETCDCTL_BINARY = `${ETCD_BIN_DIR}/etcdctl`;
/** The system user the member runs as (created by the script when the machine has none). */
export const ETCD_USER = "etcd";
/** Where systemd puts the unit's credentials (LoadCredential=): the key etcd reads. */
const CREDENTIALS_DIR = `/run/credentials/${ETCD_UNIT_NAME}`;
/** The step name in messages and stamps (`etcd-1: etcd-member: ...`). */
export const ETCD_STEP = "etcd-member";
/** The unit the script enables and starts: UnitState watches it. */
export const ETCD_UNIT: StepUnit = { name: ETCD_UNIT_NAME, running: true };

/** The paths etcdMemberFiles returns, in its order (known before the certificates exist). */
export const ETCD_MEMBER_PATHS: readonly string[] = [
  ETCD_CA_FILE,
  ETCD_MEMBER_CERT_FILE,
  ETCD_MEMBER_KEY_FILE,
  ETCD_CLIENT_CERT_FILE,
  ETCD_CLIENT_KEY_FILE,
  ETCD_CONFIG_FILE,
  ETCD_UNIT_FILE,
];

/** The etcd release a member installs: its tarball's URL and sha256. */
export interface EtcdRelease {
  version: string;
  url: string;
  sha256: string;
  /** The tarball's one top-level directory, which holds the programs: etcd-v<version>-linux-<arch>. */
  directory: string;
}

/**
 * The pinned etcd release for a member machine: from `artifacts.etcdBaseUrl`, checked against the stack's own
 * checksum for the machine's arch (`artifacts.sha256.<arch>.etcd`, a mirror's build) or else the pinned one.
 */
export function etcdRelease(stack: StackSpec, machine: EtcdMachineSpec, pins: Pins = DEFAULT_PINS): EtcdRelease {
  const { version } = pins.etcd;
  const sha256 = stack.artifacts.sha256[machine.arch]?.etcd ?? pins.etcd.sha256[machine.arch];
  const directory = `etcd-v${version}-linux-${machine.arch}`;
  return { version, url: `${stack.artifacts.etcdBaseUrl}/v${version}/${directory}.tar.gz`, sha256, directory };
}

/** A member: a dedicated machine's name and the IPv4 address peers and clients reach it at. */
export interface EtcdPeer {
  name: string;
  address: string;
}

/** An external etcd cluster. */
export interface EtcdCluster {
  /** Cluster name: initial-cluster-token and the data directory's name. */
  name: string;
  /** Every member, in stack-file order. */
  members: EtcdPeer[];
}

/** Options of the scripts. */
export interface EtcdScriptOptions {
  /** The machine's OS profile (default debian-12). */
  os?: OsProfile;
  /** Delete script: also remove the packages nodeforge installed (stack `destroy.removePackages`, default true). */
  removePackages?: boolean;
  /** How long the script waits for the member to report healthy (default 180 s). */
  healthTimeoutSeconds?: number;
}

/** The member's data directory. */
export function etcdDataDir(cluster: EtcdCluster): string {
  return `/var/lib/etcd/${cluster.name}`;
}

/** The URL clients (API servers, etcdctl) use for a member. */
export function etcdClientUrl(member: EtcdPeer): string {
  return `https://${member.address}:${ETCD_CLIENT_PORT}`;
}

/** The URL peers use for a member. */
export function etcdPeerUrl(member: EtcdPeer): string {
  return `https://${member.address}:${ETCD_PEER_PORT}`;
}

/** Every member's client URL: what kube-apiserver's `etcd.external.endpoints` lists. */
export function etcdClientUrls(cluster: EtcdCluster): string[] {
  return cluster.members.map(etcdClientUrl);
}

/** etcd's `initial-cluster`: `name=https://address:2380` for every member. */
export function etcdInitialCluster(cluster: EtcdCluster): string {
  return cluster.members.map((m) => `${m.name}=${etcdPeerUrl(m)}`).join(",");
}

function memberOf(member: EtcdPeer | string, cluster: EtcdCluster): EtcdPeer {
  const name = typeof member === "string" ? member : member.name;
  const found = cluster.members.find((m) => m.name === name);
  if (!found) throw new Error(`${name}: ${ETCD_STEP}: not a member of etcd cluster ${cluster.name}`);
  return found;
}

function secretFile(path: string, content: string): ManagedFile {
  return rootFile(path, content, "0600");
}

/** The member's files: certificates and keys, etcd's configuration, the unit. */
export function etcdMemberFiles(member: EtcdPeer | string, cluster: EtcdCluster, pki: EtcdPkiMaterial): ManagedFile[] {
  const self = memberOf(member, cluster);
  const cert = pki.memberCerts[self.name];
  const key = pki.memberKeys[self.name];
  if (!cert || !key) throw new Error(`${self.name}: ${ETCD_STEP}: the etcd PKI has no certificate for this member`);
  if (cert.address !== self.address) {
    throw new Error(`${self.name}: ${ETCD_STEP}: the certificate was issued for ${cert.address}, not ${self.address}`);
  }
  const config = render("etcd/etcd.yaml.hbs", {
    name: self.name,
    dataDir: etcdDataDir(cluster),
    peerUrl: etcdPeerUrl(self),
    clientUrl: etcdClientUrl(self),
    listenClientUrls: [etcdClientUrl(self), `https://127.0.0.1:${ETCD_CLIENT_PORT}`].join(","),
    initialCluster: etcdInitialCluster(cluster),
    clusterToken: cluster.name,
    certFile: ETCD_MEMBER_CERT_FILE,
    keyFile: `${CREDENTIALS_DIR}/member.key`,
    caFile: ETCD_CA_FILE,
  });
  const unit = render("etcd/nodeforge-etcd.service.hbs", {
    memberKeyFile: ETCD_MEMBER_KEY_FILE,
    stateDirectory: etcdDataDir(cluster).replace(/^\/var\/lib\//, ""),
    etcdPath: ETCD_BINARY,
    configFile: ETCD_CONFIG_FILE,
  });
  return [
    rootFile(ETCD_CA_FILE, pki.caCert),
    rootFile(ETCD_MEMBER_CERT_FILE, cert.cert),
    secretFile(ETCD_MEMBER_KEY_FILE, key),
    rootFile(ETCD_CLIENT_CERT_FILE, pki.clientCert),
    secretFile(ETCD_CLIENT_KEY_FILE, pki.clientKey),
    rootFile(ETCD_CONFIG_FILE, config),
    rootFile(ETCD_UNIT_FILE, unit),
  ];
}

function baseValues(name: string, os: OsProfile): Record<string, unknown> {
  return scriptValues(name, os, ETCD_STEP);
}

/**
 * Idempotent: installs the etcd release (downloaded only when its checksum is not the one installed) and the `etcd`
 * user, enables and starts nodeforge-etcd.service, restarts it only when the member's files or the release changed
 * since they were last applied (or it is not running), then waits until the local member answers `etcdctl endpoint
 * health` with the client certificate.
 */
export function etcdMemberScript(
  member: EtcdPeer | string,
  cluster: EtcdCluster,
  pki: EtcdPkiMaterial,
  release: EtcdRelease,
  options: EtcdScriptOptions = {},
): string {
  const self = memberOf(member, cluster);
  const os = options.os ?? debian12;
  if (os.family !== "debian") throw new Error(`${self.name}: ${ETCD_STEP}: etcd members need a Debian-family OS`);
  return render("scripts/etcd-member.sh.hbs", {
    ...baseValues(self.name, os),
    unit: ETCD_UNIT_NAME,
    user: ETCD_USER,
    binDir: ETCD_BIN_DIR,
    programs: ETCD_PROGRAMS,
    etcdctl: ETCDCTL_BINARY,
    releaseUrl: release.url,
    releaseSha256: release.sha256,
    releaseDir: release.directory,
    tarball: `${STATE_DIR}/etcd.tar.gz`,
    unpackDir: `${STATE_DIR}/etcd-unpack`,
    configHash: filesHash(etcdMemberFiles(self, cluster, pki)),
    localEndpoint: `https://127.0.0.1:${ETCD_CLIENT_PORT}`,
    caFile: ETCD_CA_FILE,
    clientCertFile: ETCD_CLIENT_CERT_FILE,
    clientKeyFile: ETCD_CLIENT_KEY_FILE,
    healthTimeoutSeconds: options.healthTimeoutSeconds ?? 180,
  });
}

/** Run on destroy: stops and disables the member, removes its files, data directory, programs and (if nodeforge made it) user. */
export function etcdMemberDeleteScript(
  member: EtcdPeer | string,
  cluster: EtcdCluster,
  options: EtcdScriptOptions = {},
): string {
  const self = memberOf(member, cluster);
  const os = options.os ?? debian12;
  const paths = ETCD_MEMBER_PATHS;
  return render("scripts/etcd-member-delete.sh.hbs", {
    ...baseValues(self.name, os),
    unit: ETCD_UNIT_NAME,
    dataDir: etcdDataDir(cluster),
    owned: ownedPaths(paths.map((path) => rootFile(path, ""))),
    user: ETCD_USER,
    binDir: ETCD_BIN_DIR,
    programs: ETCD_PROGRAMS,
    removePackages: options.removePackages ?? true,
  });
}

/** The stack file's external etcd cluster (named after the Kubernetes cluster), or undefined for stacked etcd. */
export function etcdClusterOf(stack: StackSpec): EtcdCluster | undefined {
  const machines = stack.etcd?.external.machines;
  if (!machines) return undefined;
  return { name: stack.cluster.name, members: machines.map((m) => ({ name: m.name, address: m.address })) };
}

/** The member files that hold private keys: write them as secrets (RemoteFile `secret: true`). */
export function isEtcdSecretFile(path: string): boolean {
  return path === ETCD_MEMBER_KEY_FILE || path === ETCD_CLIENT_KEY_FILE;
}
