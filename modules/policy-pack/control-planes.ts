/**
 * Which machines are control planes, from their steps' files: nodeforge writes its own CAs on each control plane
 * before kubeadm runs there (kubeadm init, and every control-plane join, which then needs no uploaded
 * certificates), and never on a worker. The paths are kubeadm's, under its PKI directory.
 */
import type { MachineStepView } from "./machine-steps";

/** The cluster CA's private key: on every control plane. */
export const CLUSTER_CA_KEY = "/etc/kubernetes/pki/ca.key";
/** The stacked etcd CA's private key: on the control planes where kubeadm runs an etcd member (no external etcd). */
export const STACKED_ETCD_CA_KEY = "/etc/kubernetes/pki/etcd/ca.key";

/** The machines (sorted, each once) that have a step writing `path`. */
export function machinesWriting(steps: MachineStepView[], path: string): string[] {
  return [...new Set(steps.filter((s) => s.paths.includes(path)).map((s) => s.machine))].sort();
}
