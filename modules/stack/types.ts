/**
 * The validated, defaulted form of a stack file. Everything downstream (steps, components, the CLI)
 * works on these types only; nothing reads the YAML again.
 */
import type { CniPlugin } from "../pins";

export const SUPPORTED_OS = ["debian-12", "ubuntu-22.04", "ubuntu-24.04", "rocky-9"] as const;
export type OsName = (typeof SUPPORTED_OS)[number];

export const ARCHES = ["amd64", "arm64"] as const;
export type Arch = (typeof ARCHES)[number];

export const ROLES = ["control-plane", "worker", "control-plane+worker"] as const;
export type Role = (typeof ROLES)[number];

export type ContainerRuntime = "containerd" | "cri-o";

export type TaintEffect = "NoSchedule" | "PreferNoSchedule" | "NoExecute";

export interface Taint {
  key: string;
  value?: string;
  effect: TaintEffect;
}

/**
 * A jump host (SSH `ProxyJump`) nodeforge connects through to reach a machine: it logs in to the bastion, opens a
 * forwarded TCP channel to the machine and runs the machine's SSH session over it. Both host keys are pinned.
 */
export interface BastionSettings {
  /** IP address or DNS name of the bastion, as nodeforge reaches it. */
  address: string;
  port: number;
  /** Login user on the bastion (defaults to the machine's ssh user). */
  user: string;
  /** The bastion's pinned public host key, `<type> <base64>`. */
  hostKey: string;
  /** Name of the Pulumi config secret with the bastion's private key (defaults to the machine's). */
  privateKeyConfig: string;
}

/** SSH settings after merging the stack-wide defaults with a machine's own overrides. */
export interface SshSettings {
  user: string;
  port: number;
  /** Name of the Pulumi config key (a secret) that holds the private key, e.g. `sshPrivateKey`. */
  privateKeyConfig: string;
  /** Run privileged commands through sudo (required when `user` is not root). */
  sudo: boolean;
  /** Name of the Pulumi config secret holding the sudo password; absent for passwordless sudo. */
  sudoPasswordConfig?: string;
  /** How long one connection attempt (TCP connect plus SSH handshake) may take. */
  connectTimeoutSeconds: number;
  /** Retries after a failed connection attempt when the failure is transient (refused, reset, timed out). */
  retries: number;
  /** Jump host to connect through; absent to connect directly. */
  bastion?: BastionSettings;
}

export interface KubeletSettings {
  maxPods: number;
  podPidsLimit: number;
  /** The kubelet refuses cgroup v1 hosts (its own default since 1.35); false lets it run there. */
  failCgroupV1: boolean;
  systemReserved: Record<string, string>;
  kubeReserved: Record<string, string>;
  evictionHard: Record<string, string>;
}

export interface ArtifactSettings {
  /** Base of Kubernetes release binaries: `${base}/v${version}/bin/linux/${arch}/kubelet`. */
  kubernetesBaseUrl: string;
  /** Base of cri-tools releases: `${base}/v${v}/crictl-v${v}-linux-${arch}.tar.gz`. */
  crictlBaseUrl: string;
  /** Base of CNI plugins releases: `${base}/v${v}/cni-plugins-linux-${arch}-v${v}.tgz`. */
  cniPluginsBaseUrl: string;
  /** Base of etcd releases (external etcd): `${base}/v${v}/etcd-v${v}-linux-${arch}.tar.gz`. */
  etcdBaseUrl: string;
  /** Base of containerd releases: `${base}/v${v}/containerd-${v}-linux-${arch}.tar.gz`. */
  containerdBaseUrl: string;
  /** Base of runc releases: `${base}/v${v}/runc.${arch}`. */
  runcBaseUrl: string;
  /** Checksums of the mirror's own builds for the stack's version, per arch; in place of nodeforge's pins. */
  sha256: Partial<Record<Arch, BinaryChecksums>>;
}

/**
 * sha256 of each downloaded artifact for one arch: the three Kubernetes binaries, the crictl tarball and, when
 * the mirror serves a build of its own, the CNI plugins, containerd, runc and etcd releases (else the pinned
 * upstream ones are expected).
 */
export type BinaryChecksums = Record<"kubelet" | "kubeadm" | "kubectl" | "crictl", string> & {
  cniPlugins?: string;
  /** The containerd release tarball. */
  containerd?: string;
  /** The runc release file. */
  runc?: string;
  /** The etcd release tarball (external etcd machines of this arch). */
  etcd?: string;
};

export interface ContainerdSettings {
  /** Registry host -> mirror endpoints, written as containerd hosts.toml files. */
  registryMirrors: Record<string, string[]>;
  /** containerd's restrict_oom_score_adj: for nodes that are themselves containers. */
  restrictOOMScoreAdj: boolean;
}

export interface DestroySettings {
  /** Remove the OS packages nodeforge installed itself (never those the machine already had). */
  removePackages: boolean;
}

/** The cluster's certificates (stack `certificates`). */
export interface CertificateSettings {
  /** A new value renews kubeadm's certificates on every control plane and the admin certificate; "" for none. */
  renewal: string;
}

/** How a change of cluster.kubernetesVersion rolls out (stack `upgrade`). */
export interface UpgradeSettings {
  /** Workers drained and upgraded at once; the next batch starts once these are Ready and uncordoned. */
  workerBatchSize: number;
  /** How long a drain waits for pods to leave (evictions honour PodDisruptionBudgets). */
  drainTimeoutSeconds: number;
}

/** What makes a machine a VM: the hypervisor it runs on and what it is given there (stack `hypervisors[].vms[]`). */
export interface VmSettings {
  /** The hypervisor's name (`hypervisors[].name`). */
  hypervisor: string;
  /** Where the VM is declared in the stack file, for messages: `["hypervisors", h, "vms", v]`. */
  at: (string | number)[];
  cpus: number;
  memoryMiB: number;
  diskGiB: number;
  prefixLength: number;
  gateway?: string;
  nameservers: string[];
  /** sources.list lines cloud-init writes; absent: the image's own. */
  aptSources?: string[];
}

export interface MachineSpec {
  name: string;
  address: string;
  /** The address's IP family, parsed once; absent when the address is a DNS name. */
  addressFamily?: 4 | 6;
  role: Role;
  os: OsName;
  arch: Arch;
  /** The machine's public host key, `<type> <base64>`, pinned for every connection. */
  hostKey: string;
  ssh: SshSettings;
  labels: Record<string, string>;
  taints: Taint[];
  /**
   * Present for a VM nodeforge creates (declared under `hypervisors[].vms`). Its `hostKey` is then "": nodeforge
   * generates the VM's host key (a Pulumi secret) and pins that one.
   */
  vm?: VmSettings;
}

/** A machine that hosts VMs (stack `hypervisors[]`): not a Kubernetes node. */
export interface HypervisorSpec {
  name: string;
  address: string;
  hostKey: string;
  os: OsName;
  arch: Arch;
  ssh: SshSettings;
  driver: "libvirt";
  /** libvirt connection URI for virsh on the hypervisor. */
  uri: string;
  storagePool: { name: string; path: string };
  /** A Linux bridge, or a libvirt network, the VMs' interfaces attach to. */
  network: { bridge: string } | { libvirtNetwork: string };
  image: { url?: string; path?: string; sha256: string; format: "qcow2" | "raw" };
  capacity: { cpus: number; memoryMiB: number };
  /** The names of its VMs (each a MachineSpec in `StackSpec.machines` with `vm`), in stack order. */
  vms: string[];
}

export const KUBE_PROXY_MODES = ["iptables", "ipvs", "nftables"] as const;
export type KubeProxyMode = (typeof KUBE_PROXY_MODES)[number];

export interface KubeProxySettings {
  /** kube-proxy's proxy mode (KubeProxyConfiguration.mode). nftables needs Kubernetes 1.33 or later. */
  mode: KubeProxyMode;
  /**
   * KubeProxyConfiguration.conntrack.maxPerCore: 0 leaves the kernel's conntrack table size alone. Nodes that are
   * containers (kind, the nspawn lab) must say 0: nf_conntrack_max belongs to the host, and kube-proxy exits when it
   * cannot set it. Absent: kube-proxy's default (32768 per core).
   */
  conntrackMaxPerCore?: number;
}

/** The pod network: a CNI plugin nodeforge applies from its pinned upstream manifest, or none. */
export interface CniSettings {
  /** none: nodeforge installs no CNI plugin; nodes stay NotReady until one is installed by other means. */
  plugin: CniPlugin | "none";
  /** Where to download the manifest instead of the release URL (a mirror serving the same bytes). */
  manifestUrl?: string;
  /** sha256 of the manifest; required when nodeforge's pins have none for the plugin. */
  sha256?: string;
}

/** What stands in front of the control plane's API servers at `cluster.controlPlaneEndpoint`. */
export interface ControlPlaneLoadBalancer {
  /** external: a load balancer nodeforge does not manage; kube-vip: a VIP announced by kube-vip (ARP). */
  type: "external" | "kube-vip";
  /** The load balancer's address (for kube-vip: the virtual IP). */
  address: string;
  /** kube-vip only: the network interface the VIP is announced on (kube-vip picks the default route's when absent). */
  interface?: string;
}

/**
 * A machine dedicated to one member of an external etcd cluster (stack `etcd.external.machines`): not a Kubernetes
 * node, so it has no role, labels or taints.
 */
export interface EtcdMachineSpec {
  name: string;
  /** IPv4 address: SSH, etcd peer and client URLs, and the member certificate's IP SAN. */
  address: string;
  os: OsName;
  /** Selects the etcd release tarball downloaded. */
  arch: Arch;
  /** The machine's public host key, `<type> <base64>`, pinned for every connection. */
  hostKey: string;
  ssh: SshSettings;
}

/** Where the cluster's etcd runs; absent from StackSpec when kubeadm runs it on the control plane (stacked). */
export interface EtcdSettings {
  /** An external etcd cluster: one member per machine, an odd number of them (1, 3, 5 or 7). */
  external: { machines: EtcdMachineSpec[] };
}

export interface ClusterSettings {
  name: string;
  kubernetesVersion: string;
  podCIDR: string;
  serviceCIDR: string;
  dnsDomain: string;
  containerRuntime: ContainerRuntime;
  /** Stable `host[:port]` of the API server (kubeadm controlPlaneEndpoint); required with several control planes. */
  controlPlaneEndpoint?: string;
  controlPlaneLoadBalancer?: ControlPlaneLoadBalancer;
  /** Extra subject alternative names for the API server certificate. */
  certificateSANs?: string[];
}

/** A `host:port` endpoint, parsed. */
export interface Endpoint {
  /** Host as written, without brackets: an IPv4 or IPv6 address or a DNS name. */
  host: string;
  port: number;
  /** The address family when the host is an IP address. */
  family?: 4 | 6;
}

/**
 * Values computed (and parsed) once from the stack file, so that no two files compute them differently and nothing
 * downstream parses a stack value again.
 */
export interface DerivedValues {
  /** The cluster's IP family: the pod CIDR's. */
  ipFamily: 4 | 6;
  /**
   * The API endpoint every node and kubeconfig uses: `cluster.controlPlaneEndpoint` (port 6443 when it names none),
   * or, for a single control plane without one, the first control-plane machine's address on port 6443.
   */
  apiEndpoint: Endpoint;
  /** The family of the control-plane load balancer's address, when there is one and it is an IP address. */
  loadBalancerFamily?: 4 | 6;
  /** The kube-dns Service address: the tenth address of the service CIDR (kubeadm's convention). */
  clusterDnsIp: string;
  /** The `kubernetes` Service address: the first address of the service CIDR. */
  apiServerServiceIp: string;
}

export interface StackSpec {
  /** The file the spec was read from, for messages. */
  file: string;
  cluster: ClusterSettings;
  kubelet: KubeletSettings;
  kubeProxy: KubeProxySettings;
  cni: CniSettings;
  containerd: ContainerdSettings;
  artifacts: ArtifactSettings;
  destroy: DestroySettings;
  upgrade: UpgradeSettings;
  certificates: CertificateSettings;
  /** External etcd; absent for stacked etcd (the default). */
  etcd?: EtcdSettings;
  /** Machines that host VMs; empty when the stack has none. */
  hypervisors: HypervisorSpec[];
  /** Every Kubernetes node: the machines under `machines`, then each hypervisor's VMs. */
  machines: MachineSpec[];
  derived: DerivedValues;
}

export function isControlPlane(machine: MachineSpec): boolean {
  return machine.role === "control-plane" || machine.role === "control-plane+worker";
}
