/**
 * Defaults for everything a stack file may leave out. The schema documents the same values as
 * `default` annotations; a unit test keeps the two in step.
 */
import {
  DEFAULT_CNI_PLUGINS_BASE_URL,
  DEFAULT_CRICTL_BASE_URL,
  DEFAULT_ETCD_BASE_URL,
  DEFAULT_KUBERNETES_BASE_URL,
  DEFAULT_RUNC_BASE_URL,
  DEFAULT_CONTAINERD_BASE_URL,
} from "../pins";
import type {
  ArtifactSettings,
  CniSettings,
  ContainerdSettings,
  DestroySettings,
  UpgradeSettings,
  CertificateSettings,
  KubeletSettings,
  KubeProxySettings,
  SshSettings,
} from "./types";

export const CLUSTER_DEFAULTS = {
  podCIDR: "10.244.0.0/16",
  serviceCIDR: "10.96.0.0/12",
  dnsDomain: "cluster.local",
  containerRuntime: "containerd",
} as const;

export const KUBELET_DEFAULTS: KubeletSettings = {
  maxPods: 110,
  podPidsLimit: -1,
  failCgroupV1: true,
  systemReserved: {},
  kubeReserved: {},
  evictionHard: {},
};

export const KUBE_PROXY_DEFAULTS: KubeProxySettings = { mode: "iptables" };

export const CONTAINERD_DEFAULTS: ContainerdSettings = { registryMirrors: {}, restrictOOMScoreAdj: false };

/**
 * No CNI plugin unless the stack asks for one: nodeforge's pins carry no verified manifest checksum yet (see
 * modules/pins), so a default plugin would make every stack fail validation until it named a sha256.
 */
export const CNI_DEFAULTS: CniSettings = { plugin: "none" };

export const SSH_DEFAULTS: SshSettings = {
  user: "root",
  port: 22,
  privateKeyConfig: "sshPrivateKey",
  sudo: false,
  connectTimeoutSeconds: 15,
  retries: 3,
};

/** Bastion fields with a fixed default; `user` and `privateKeyConfig` default to the machine's own ssh settings. */
export const BASTION_DEFAULTS = { port: 22 } as const;

export const ARTIFACT_DEFAULTS: ArtifactSettings = {
  kubernetesBaseUrl: DEFAULT_KUBERNETES_BASE_URL,
  crictlBaseUrl: DEFAULT_CRICTL_BASE_URL,
  cniPluginsBaseUrl: DEFAULT_CNI_PLUGINS_BASE_URL,
  etcdBaseUrl: DEFAULT_ETCD_BASE_URL,
  containerdBaseUrl: DEFAULT_CONTAINERD_BASE_URL,
  runcBaseUrl: DEFAULT_RUNC_BASE_URL,
  sha256: {},
};

export const DESTROY_DEFAULTS: DestroySettings = { removePackages: true };

export const UPGRADE_DEFAULTS: UpgradeSettings = { workerBatchSize: 1, drainTimeoutSeconds: 300 };

export const CERTIFICATE_DEFAULTS: CertificateSettings = { renewal: "" };

export const MACHINE_DEFAULTS = { arch: "amd64" } as const;

/** A hypervisor's settings the stack file may leave out. */
export const HYPERVISOR_DEFAULTS = {
  os: "debian-12",
  arch: "amd64",
  driver: "libvirt",
  uri: "qemu:///system",
} as const;

/**
 * The libvirt storage pool nodeforge defines on a hypervisor unless the stack names another: under libvirt's own
 * images directory, which qemu's user may pass through (nodeforge's state directory is root's alone).
 */
export const STORAGE_POOL_DEFAULTS = { name: "nodeforge", path: "/var/lib/libvirt/images/nodeforge" } as const;

/** A hypervisor image's settings the stack file may leave out. */
export const IMAGE_DEFAULTS = { format: "qcow2" } as const;

/** A VM's network settings the stack file may leave out. */
export const VM_DEFAULTS = { prefixLength: 24 } as const;
