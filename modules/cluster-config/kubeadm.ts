/**
 * kubeadm configuration files: InitConfiguration + ClusterConfiguration + KubeletConfiguration for the first
 * control-plane machine, JoinConfiguration for every other machine (workers and control-plane joins).
 *
 * The bootstrap token is a Pulumi secret upstream: render these files inside the secret's
 * `apply`, keep the content secret, and write it mode 0600 (the files returned here say so).
 */
import { render } from "../render";
import { isControlPlane, type MachineSpec, type StackSpec, type Taint } from "../stack";
import { CGROUP_DRIVER, CRI_ENDPOINT, type ManagedFile } from "../steps";
import { API_SERVER_PORT, apiEndpointText, apiServerCertSANs, controlPlaneMachines } from "./endpoint";

/** Where nodeforge keeps the configuration files it hands to kubeadm (and kubectl). */
export const NODEFORGE_KUBERNETES_DIR = "/etc/kubernetes/nodeforge";
export const KUBEADM_INIT_CONFIG = `${NODEFORGE_KUBERNETES_DIR}/kubeadm-init.yaml`;
export const KUBEADM_JOIN_CONFIG = `${NODEFORGE_KUBERNETES_DIR}/kubeadm-join.yaml`;

/** kubeadm's own taint for control-plane nodes; kubeadm leaves it out once `taints` is given, so nodeforge adds it. */
export const CONTROL_PLANE_TAINT: Taint = { key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" };

/**
 * The preflight check that refuses a cgroup v1 host. kubeadm's own message asks for both: the kubelet's
 * failCgroupV1 false (nodeforge's drop-in, `kubelet.failCgroupV1`) and this check skipped explicitly.
 */
export const CGROUP_V1_PREFLIGHT = "SystemVerification";

/** Preflight checks a stack's own choices make fail on purpose; every other check stays fatal. */
export function ignoredPreflightErrors(stack: StackSpec): string[] {
  return stack.kubelet.failCgroupV1 ? [] : [CGROUP_V1_PREFLIGHT];
}

/** A ManagedFile whose content is secret: write it mode 0600 and keep it a Pulumi secret. */
export type SecretManagedFile = ManagedFile & { secret: true };

/** An etcd cluster nodeforge does not run (kubeadm `etcd.external`); the files must already be on the machines. */
export interface ExternalEtcd {
  endpoints: string[];
  caFile: string;
  certFile: string;
  keyFile: string;
}

export interface KubeadmInitSecrets {
  /** `[a-z0-9]{6}.[a-z0-9]{16}`: the token the other machines join with. */
  bootstrapToken: string;
}

export interface KubeadmInitOptions {
  externalEtcd?: ExternalEtcd;
  /** Bootstrap token lifetime, a Go duration (default 24h0m0s, kubeadm's). */
  bootstrapTokenTtl?: string;
}

export interface KubeadmJoinValues {
  bootstrapToken: string;
  /** `sha256:<64 hex>` of the cluster CA's public key (`kubeadm join --discovery-token-ca-cert-hash`). */
  caCertHashes: string[];
}

const TOKEN = /^[a-z0-9]{6}\.[a-z0-9]{16}$/;
const CA_CERT_HASH = /^sha256:[a-f0-9]{64}$/;
const DURATION = /^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$/;

/** Checks a secret's shape; the message never contains the value. */
function requireShape(machine: MachineSpec, what: string, value: string, shape: RegExp, expected: string): void {
  if (!shape.test(value)) throw new Error(`${machine.name}: kubeadm configuration: the ${what} is not ${expected}`);
}

/** Taints for kubeadm's nodeRegistration: a control-plane-only machine keeps kubeadm's control-plane taint. */
export function registrationTaints(machine: MachineSpec): Taint[] {
  return machine.role === "control-plane" ? [CONTROL_PLANE_TAINT, ...machine.taints] : [...machine.taints];
}

/** Values of templates/partials/kubeadm-node-registration.yaml.hbs. */
export function nodeRegistrationValues(stack: StackSpec, machine: MachineSpec): Record<string, unknown> {
  const nodeIp = machine.addressFamily ? [{ name: "node-ip", value: machine.address }] : [];
  return {
    nodeName: machine.name,
    criSocket: CRI_ENDPOINT,
    taints: registrationTaints(machine).map((t) => ({
      key: t.key,
      hasValue: t.value !== undefined,
      value: t.value ?? "",
      effect: t.effect,
    })),
    kubeletExtraArgs: nodeIp,
    ignorePreflightErrors: ignoredPreflightErrors(stack),
  };
}

/** Values of templates/kubeadm/init.yaml.hbs (exported for tests and `nodeforge render`). */
export function kubeadmInitValues(
  stack: StackSpec,
  machine: MachineSpec,
  secrets: KubeadmInitSecrets,
  options: KubeadmInitOptions = {},
): Record<string, unknown> {
  if (!isControlPlane(machine)) throw new Error(`${machine.name}: kubeadm init runs on a control-plane machine only`);
  requireShape(machine, "bootstrap token", secrets.bootstrapToken, TOKEN, "[a-z0-9]{6}.[a-z0-9]{16}");
  const ttl = options.bootstrapTokenTtl ?? "24h0m0s";
  requireShape(machine, "bootstrap token TTL", ttl, DURATION, "a duration like 24h0m0s");
  const etcd = options.externalEtcd;
  if (etcd && etcd.endpoints.length === 0)
    throw new Error(`${machine.name}: external etcd needs at least one endpoint`);
  return {
    ...nodeRegistrationValues(stack, machine),
    bootstrapToken: secrets.bootstrapToken,
    bootstrapTokenTtl: ttl,
    advertiseAddress: machine.addressFamily ? machine.address : "",
    apiServerPort: API_SERVER_PORT,
    skipPhases: ["addon/kube-proxy"],
    clusterName: stack.cluster.name,
    kubernetesVersion: `v${stack.cluster.kubernetesVersion}`,
    controlPlaneEndpoint: apiEndpointText(stack),
    podSubnet: stack.cluster.podCIDR,
    serviceSubnet: stack.cluster.serviceCIDR,
    dnsDomain: stack.cluster.dnsDomain,
    certSANs: apiServerCertSANs(stack),
    externalEtcd: etcd ?? false,
    cgroupDriver: CGROUP_DRIVER,
    criEndpoint: CRI_ENDPOINT,
    clusterDnsIp: stack.derived.clusterDnsIp,
  };
}

/**
 * `kubeadm init --config KUBEADM_INIT_CONFIG` on the first control-plane machine (controlPlaneMachines(stack)[0]).
 * The file holds the bootstrap token: mode 0600, secret.
 */
export function kubeadmInitFile(
  stack: StackSpec,
  machine: MachineSpec,
  secrets: KubeadmInitSecrets,
  options: KubeadmInitOptions = {},
): SecretManagedFile {
  const content = render("kubeadm/init.yaml.hbs", kubeadmInitValues(stack, machine, secrets, options));
  return { path: KUBEADM_INIT_CONFIG, content, mode: "0600", owner: "root", group: "root", secret: true };
}

/** Values of templates/kubeadm/join.yaml.hbs. */
export function kubeadmJoinValues(
  stack: StackSpec,
  machine: MachineSpec,
  join: KubeadmJoinValues,
): Record<string, unknown> {
  requireShape(machine, "bootstrap token", join.bootstrapToken, TOKEN, "[a-z0-9]{6}.[a-z0-9]{16}");
  if (join.caCertHashes.length === 0) throw new Error(`${machine.name}: kubeadm join needs the CA certificate hash`);
  for (const hash of join.caCertHashes) {
    requireShape(machine, "CA certificate hash", hash, CA_CERT_HASH, "sha256:<64 lowercase hex digits>");
  }
  let controlPlane: false | Record<string, unknown> = false;
  if (isControlPlane(machine)) {
    if (!machine.addressFamily) {
      throw new Error(
        `${machine.name}: a control-plane join needs an IP address to advertise the API server on, not '${machine.address}'`,
      );
    }
    controlPlane = {
      advertiseAddress: machine.address,
      bindPort: API_SERVER_PORT,
    };
  }
  return {
    ...nodeRegistrationValues(stack, machine),
    apiServerEndpoint: apiEndpointText(stack),
    bootstrapToken: join.bootstrapToken,
    caCertHashes: join.caCertHashes,
    controlPlane,
  };
}

/**
 * `kubeadm join --config KUBEADM_JOIN_CONFIG` on every machine but the first control plane: workers, and control
 * planes (with `controlPlane`: the advertise address; the cluster's CAs are already on the machine, written by
 * nodeforge, so nothing is downloaded from kubeadm's 2-hour certificate upload). Holds the bootstrap token: mode
 * 0600, secret.
 */
export function kubeadmJoinFile(stack: StackSpec, machine: MachineSpec, join: KubeadmJoinValues): SecretManagedFile {
  if (controlPlaneMachines(stack)[0]?.name === machine.name) {
    throw new Error(`${machine.name}: is the first control-plane machine, which runs kubeadm init, not join`);
  }
  const content = render("kubeadm/join.yaml.hbs", kubeadmJoinValues(stack, machine, join));
  return { path: KUBEADM_JOIN_CONFIG, content, mode: "0600", owner: "root", group: "root", secret: true };
}
