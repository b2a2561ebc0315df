/**
 * What a kubeadm init or join that was cut off part-way (a dropped connection, a reboot, a failed phase) leaves on
 * its machine, and which of kubeadm's preflight checks see exactly that. A re-run skips those checks and no other:
 * kubeadm's phases reuse the certificates and kubeconfigs already there and rewrite the rest, so the re-run finishes
 * what the first run started, while a machine that is busy for any other reason still fails its checks.
 */
import { API_SERVER_PORT } from "./endpoint";
import { KUBELET_KUBECONFIG } from "../steps";
import { ADMIN_KUBECONFIG as ADMIN_CONF } from "./kube-vip";

export const STATIC_POD_DIR = "/etc/kubernetes/manifests";
export { KUBELET_KUBECONFIG };
/** The kubeconfig kubeadm join writes for the kubelet's TLS bootstrap, before the kubelet has joined. */
export const BOOTSTRAP_KUBELET_CONF = "/etc/kubernetes/bootstrap-kubelet.conf";

/** The static pod manifests kubeadm writes on a control plane (its init and control-plane join). */
export function kubeadmStaticPods(stackedEtcd: boolean): string[] {
  const names = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", ...(stackedEtcd ? ["etcd"] : [])];
  return names.map((name) => `${STATIC_POD_DIR}/${name}.yaml`);
}

/** The CA a worker's join writes from what it discovered (a control plane has nodeforge's from the start). */
const WORKER_CA = "/etc/kubernetes/pki/ca.crt";

/** Files an interrupted init or join leaves: kubeadm's own (nodeforge's files, kube-vip's manifest among them, are not). */
export function kubeadmLeftovers(of: ResumeOf): string[] {
  const staticPods = of.controlPlane ? kubeadmStaticPods(of.stackedEtcd) : [];
  if (of.init) return [ADMIN_CONF, ...staticPods];
  return [BOOTSTRAP_KUBELET_CONF, ...(of.controlPlane ? staticPods : [WORKER_CA])];
}

/** kubeadm's name for a check on a path: `FileAvailable--etc-kubernetes-manifests-etcd.yaml`. */
function checkName(kind: "FileAvailable" | "DirAvailable", path: string): string {
  return `${kind}-${path.replaceAll("/", "-")}`;
}

/** What a resume is about: an init (the first control plane) or a join, as a control plane or a worker. */
export interface ResumeOf {
  init: boolean;
  controlPlane: boolean;
  stackedEtcd: boolean;
}

/**
 * The preflight checks an interrupted init or join on this machine fails by itself: the ports its static pods and
 * the kubelet hold, the files it wrote, stacked etcd's data (the checks of kubeadm v1.36's preflight/checks.go:
 * InitNodeChecks, JoinNodeChecks and their common checks). Named one by one, not "all": every other check stays
 * fatal, and kubeadm refuses "all" beside the named checks a stack file's own choices add.
 */
export function leftoverPreflightChecks(of: ResumeOf): string[] {
  const controlPlane = of.controlPlane
    ? [
        `Port-${API_SERVER_PORT}`,
        "Port-10259", // kube-scheduler
        "Port-10257", // kube-controller-manager
        ...kubeadmStaticPods(of.stackedEtcd).map((path) => checkName("FileAvailable", path)),
        ...(of.stackedEtcd ? ["Port-2379", "Port-2380", checkName("DirAvailable", "/var/lib/etcd")] : []),
      ]
    : [checkName("FileAvailable", WORKER_CA)];
  const join = of.init ? [] : [checkName("FileAvailable", BOOTSTRAP_KUBELET_CONF)];
  return [...controlPlane, "Port-10250", ...join];
}

/** kubeadm's flag that skips those checks. */
export function resumeFlag(of: ResumeOf): string {
  return `--ignore-preflight-errors=${leftoverPreflightChecks(of).join(",")}`;
}
