/**
 * The provisioning steps, in the order they run on a machine. Read top to bottom: this is what
 * `pulumi up` does to every node.
 */
import { configureKubelet } from "./configure-kubelet";
import { installContainerd } from "./install-containerd";
import { installKubelet } from "./install-kubelet";
import { preflight } from "./preflight";
import type { Step } from "./types";

export const STEPS: readonly Step[] = [
  preflight, // os-release, arch, swap off, kernel modules, sysctls
  installContainerd, // base OS packages, containerd and runc releases (pinned sha256), unit, config.toml, start
  installKubelet, // kubelet, kubeadm, kubectl, crictl: pinned sha256
  configureKubelet, // kubelet.service, config drop-in, enable
];

export { stepContext } from "./context";
export { filesHash, sha256 } from "./hash";
export { rootFile, type ManagedFile, type Step, type StepContext, type StepUnit } from "./types";
export { ownedPaths, type OwnedPaths } from "./owned-paths";
export { planMachine, type PlannedNodeStep } from "./plan";
export { preludeValues, scriptValues } from "./values";
export * from "./constants";
export { kubernetesArtifacts, STAGED_KUBELET } from "./install-kubelet";
