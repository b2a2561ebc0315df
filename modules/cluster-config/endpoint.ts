/** Where the cluster's API is reached, and the names its serving certificate must carry. */
import {
  API_SERVER_PORT,
  canonicalHost,
  formatEndpoint,
  isControlPlane,
  type Endpoint,
  type MachineSpec,
  type StackSpec,
} from "../stack";

export { API_SERVER_PORT };

/** The control-plane machines of a stack, in file order; the first is the one that runs `kubeadm init`. */
export function controlPlaneMachines(stack: StackSpec): MachineSpec[] {
  return stack.machines.filter(isControlPlane);
}

/**
 * The API endpoint every node and kubeconfig uses: `cluster.controlPlaneEndpoint` (port 6443 when it names none),
 * or, for a single control plane without one, the first control-plane machine's address on port 6443.
 */
export function apiEndpoint(stack: StackSpec): Endpoint {
  return stack.derived.apiEndpoint;
}

/** `host:port` (IPv6 in brackets), as kubeadm's controlPlaneEndpoint and discovery apiServerEndpoint take it. */
export function apiEndpointText(stack: StackSpec): string {
  return formatEndpoint(apiEndpoint(stack));
}

/** `https://host:port`, the `server` of kubeconfigs. */
export function apiServerUrl(stack: StackSpec): string {
  return `https://${apiEndpointText(stack)}`;
}

/**
 * Subject alternative names for the API server certificate, deduplicated (IP addresses compared in canonical
 * form), in a stable order: the stack's certificateSANs, every control-plane machine's address, the endpoint host,
 * the load balancer address. kubeadm adds the node name, `kubernetes.*` and the Service IP itself.
 */
export function apiServerCertSANs(stack: StackSpec): string[] {
  const candidates = [
    ...(stack.cluster.certificateSANs ?? []),
    ...controlPlaneMachines(stack).map((m) => m.address),
    apiEndpoint(stack).host,
    ...(stack.cluster.controlPlaneLoadBalancer ? [stack.cluster.controlPlaneLoadBalancer.address] : []),
  ];
  const seen = new Set<string>();
  const sans: string[] = [];
  for (const san of candidates) {
    const key = canonicalHost(san);
    if (seen.has(key)) continue;
    seen.add(key);
    sans.push(san);
  }
  return sans;
}
