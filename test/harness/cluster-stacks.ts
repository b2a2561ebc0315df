/**
 * Stack files for the cluster-config tests: one control plane, three control planes behind an external load
 * balancer, three behind kube-vip; each with a worker carrying taints, for every kube-proxy mode.
 */
import { parseStack, type KubeProxyMode, type StackSpec } from "../../modules/stack";
import { TEST_HOST_KEY } from "./render-fixtures";

export type Topology = "single" | "external-lb" | "kube-vip";
export const TOPOLOGIES: readonly Topology[] = ["single", "external-lb", "kube-vip"];
export const MODES: readonly KubeProxyMode[] = ["iptables", "ipvs", "nftables"];

export const VERSION = "1.36.4";
export const POD_CIDR = "10.32.0.0/16";
export const SERVICE_CIDR = "10.112.0.0/12";
export const DNS_DOMAIN = "lab.internal";
export const EXTRA_SANS = ["api.example.com", "203.0.113.50"];
export const VIP = "192.0.2.100";
export const LB_NAME = "lb.example.internal";

/** A machine entry of a stack file's `machines:` list (Debian 12, the test host key); `extra` lines go inside it. */
export function machineLines(name: string, address: string, role: string, extra: string[] = []): string[] {
  return [
    `  - name: ${name}`,
    `    address: ${address}`,
    `    role: ${role}`,
    "    os: debian-12",
    `    hostKey: ${TEST_HOST_KEY}`,
    ...extra.map((l) => `    ${l}`),
  ];
}

/** The stack file text of a topology; `cluster` lines are added to (or replace nothing in) the cluster block. */
export function clusterStackYaml(topology: Topology, mode: KubeProxyMode, cluster: string[] = []): string {
  const endpoint =
    topology === "external-lb"
      ? [
          `  controlPlaneEndpoint: "${LB_NAME}:6443"`,
          `  controlPlaneLoadBalancer: { type: external, address: ${LB_NAME} }`,
        ]
      : topology === "kube-vip"
        ? [
            `  controlPlaneEndpoint: "${VIP}"`,
            `  controlPlaneLoadBalancer: { type: kube-vip, address: "${VIP}", interface: eth0 }`,
          ]
        : [];
  const controlPlanes =
    topology === "single"
      ? machineLines("cp-1", "192.0.2.10", "control-plane")
      : [
          ...machineLines("cp-1", "192.0.2.10", "control-plane"),
          ...machineLines("cp-2", "192.0.2.11", "control-plane"),
          ...machineLines("cp-3", "192.0.2.12", "control-plane+worker"),
        ];
  return [
    "cluster:",
    "  name: lab",
    `  kubernetesVersion: "${VERSION}"`,
    `  podCIDR: ${POD_CIDR}`,
    `  serviceCIDR: ${SERVICE_CIDR}`,
    `  dnsDomain: ${DNS_DOMAIN}`,
    `  certificateSANs: ${JSON.stringify(EXTRA_SANS)}`,
    ...endpoint,
    ...cluster.map((l) => `  ${l}`),
    "kubeProxy:",
    `  mode: ${mode}`,
    "machines:",
    ...controlPlanes,
    ...machineLines("worker-1", "192.0.2.21", "worker", [
      "taints: [{ key: dedicated, value: batch, effect: NoSchedule }, { key: example.com/noisy, effect: PreferNoSchedule }]",
    ]),
    "",
  ].join("\n");
}

export function clusterStack(topology: Topology, mode: KubeProxyMode = "iptables"): StackSpec {
  return parseStack(clusterStackYaml(topology, mode), `${topology}-${mode}.yaml`);
}

/** Well-formed stand-ins for the secrets (never real ones). */
export const TEST_TOKEN = "abcdef.0123456789abcdef";
export const TEST_CA_HASH = `sha256:${"a".repeat(64)}`;
