/**
 * kube-vip as a static pod on each control-plane machine (controlPlaneLoadBalancer.type kube-vip): ARP mode with
 * leader election, so one machine at a time holds the virtual IP, and IPVS load balancing of port 6443 across
 * the API servers.
 */
import { DEFAULT_PINS, type Pins } from "../pins";
import { render } from "../render";
import { isControlPlane, type MachineSpec, type StackSpec } from "../stack";
import type { ManagedFile } from "../steps";
import { API_SERVER_PORT } from "./endpoint";

export const KUBE_VIP_MANIFEST = "/etc/kubernetes/manifests/kube-vip.yaml";
export const ADMIN_KUBECONFIG = "/etc/kubernetes/admin.conf";
/**
 * kubeadm (1.29+) grants admin.conf its rights only once the API server is up, so during `kubeadm init` kube-vip
 * must use super-admin.conf on the init machine (kube-vip issue 684); switch to admin.conf after init.
 */
export const SUPER_ADMIN_KUBECONFIG = "/etc/kubernetes/super-admin.conf";

export interface KubeVipOptions {
  /** True on the first control-plane machine until `kubeadm init` has finished: use super-admin.conf. */
  bootstrap: boolean;
}

/** Whether the stack runs kube-vip (and so every control-plane machine gets its static pod). */
export function usesKubeVip(stack: StackSpec): boolean {
  return stack.cluster.controlPlaneLoadBalancer?.type === "kube-vip";
}

/** Values of templates/kube-vip/kube-vip.yaml.hbs. */
export function kubeVipValues(
  stack: StackSpec,
  machine: MachineSpec,
  options: KubeVipOptions,
  pins: Pins = DEFAULT_PINS,
): Record<string, unknown> {
  const lb = stack.cluster.controlPlaneLoadBalancer;
  if (!lb || lb.type !== "kube-vip") throw new Error(`${machine.name}: the stack does not use kube-vip`);
  if (!isControlPlane(machine)) throw new Error(`${machine.name}: kube-vip runs on control-plane machines only`);
  // Validation made sure kube-vip's address is an IP address.
  const vipFamily = stack.derived.loadBalancerFamily;
  const port = String(API_SERVER_PORT);
  const env: { name: string; value: string }[] = [
    { name: "vip_arp", value: "true" },
    { name: "address", value: lb.address },
    { name: "vip_subnet", value: vipFamily === 6 ? "128" : "32" },
    ...(lb.interface !== undefined ? [{ name: "vip_interface", value: lb.interface }] : []),
    { name: "port", value: port },
    { name: "cp_enable", value: "true" },
    { name: "cp_namespace", value: "kube-system" },
    { name: "svc_enable", value: "false" },
    { name: "vip_leaderelection", value: "true" },
    { name: "vip_leasename", value: "plndr-cp-lock" },
    { name: "vip_leaseduration", value: "5" },
    { name: "vip_renewdeadline", value: "3" },
    { name: "vip_retryperiod", value: "1" },
    { name: "lb_enable", value: "true" },
    { name: "lb_port", value: port },
  ];
  return {
    address: lb.address,
    port,
    image: pins.kubeVipImage,
    env,
    kubeconfigPath: options.bootstrap ? SUPER_ADMIN_KUBECONFIG : ADMIN_KUBECONFIG,
  };
}

/**
 * The kube-vip static pod manifest for one control-plane machine, mode 0600 like kubeadm's own manifests. Write
 * it before `kubeadm init`/`join` (kubeadm's preflight is told to accept the non-empty manifests directory).
 */
export function kubeVipManifestFile(
  stack: StackSpec,
  machine: MachineSpec,
  options: KubeVipOptions,
  pins: Pins = DEFAULT_PINS,
): ManagedFile {
  const content = render("kube-vip/kube-vip.yaml.hbs", kubeVipValues(stack, machine, options, pins));
  return { path: KUBE_VIP_MANIFEST, content, mode: "0600", owner: "root", group: "root" };
}
