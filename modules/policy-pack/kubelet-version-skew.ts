/**
 * Stack policy: every kubelet is within Kubernetes' version skew window of the API servers
 * (https://kubernetes.io/releases/version-skew-policy/): never newer than the oldest kube-apiserver, at most three
 * minor versions older than the newest. Versions are read where nodeforge writes them down: the release URLs its
 * install step downloads the kubelet and kubeadm from (`.../v1.36.4/bin/linux/amd64/kubelet`), and the
 * `kubernetesVersion` of the ClusterConfiguration kubeadm init is given (the control plane it starts). That file holds
 * the bootstrap token, so a preview of a new stack does not know it yet; the control planes' kubeadm release then
 * stands for it (nodeforge names the kubeadm it installs as the version to run).
 */
import type { StackValidationPolicy } from "@pulumi/policy";
import { parseAllDocuments } from "yaml";
import { CLUSTER_CA_KEY, machinesWriting } from "./control-planes";
import { machineSteps, type MachineStepView } from "./machine-steps";

/** A Kubernetes release, as far as the skew policy reads it. */
export interface Version {
  major: number;
  minor: number;
  text: string;
}

/** `1.36.4` or `v1.36.4`; undefined for anything else. */
export function version(text: string): Version | undefined {
  const match = /^v?(\d+)\.(\d+)\.\d+/.exec(text);
  return match ? { major: Number(match[1]), minor: Number(match[2]), text: text.replace(/^v/, "") } : undefined;
}

/** The releases of `binary` a script downloads, by the Kubernetes release URL layout. */
function releasesIn(script: string, binary: "kubelet" | "kubeadm"): Version[] {
  const url = new RegExp(`/v(\\d+\\.\\d+\\.\\d+)/bin/linux/[a-z0-9_]+/${binary}(?![\\w.-])`, "g");
  return [...script.matchAll(url)].map((m) => version(m[1]!)!);
}

/** The `kubernetesVersion` of every ClusterConfiguration in the steps' files, where known. */
function clusterConfigurationVersions(steps: MachineStepView[]): Version[] {
  const found: Version[] = [];
  for (const step of steps) {
    for (const path of step.paths.filter((p) => p.endsWith(".yaml"))) {
      const text = step.content(path);
      if (text === undefined) continue;
      for (const document of parseAllDocuments(text)) {
        const config = document.errors.length === 0 ? (document.toJS() as Record<string, unknown> | null) : null;
        const named = config?.kind === "ClusterConfiguration" ? version(String(config.kubernetesVersion)) : undefined;
        if (named) found.push(named);
      }
    }
  }
  return found;
}

/** Why `kubelet` may not talk to API servers of these versions, or undefined when it may. */
export function skewProblem(kubelet: Version, apiServers: Version[]): string | undefined {
  const oldest = apiServers.reduce((a, b) => (b.minor < a.minor ? b : a));
  const newest = apiServers.reduce((a, b) => (b.minor > a.minor ? b : a));
  if (apiServers.some((v) => v.major !== kubelet.major)) {
    return `kubelet ${kubelet.text} and kube-apiserver ${newest.text} differ in their major version`;
  }
  if (kubelet.minor > oldest.minor) return `kubelet ${kubelet.text} is newer than kube-apiserver ${oldest.text}`;
  if (kubelet.minor < newest.minor - 3) {
    return `kubelet ${kubelet.text} is more than 3 minor versions older than kube-apiserver ${newest.text}`;
  }
  return undefined;
}

export const kubeletVersionSkew: StackValidationPolicy = {
  name: "kubelet-version-skew",
  description:
    "Every machine's kubelet is a release the API servers support: not newer than the oldest kube-apiserver, at " +
    "most 3 minor versions older than the newest (Kubernetes' version skew policy). Outside that window the " +
    "kubelet may use APIs the server does not serve, or the server may have dropped what the kubelet relies on: " +
    "nodes fail to register or to run pods, and an upgrade in the wrong order strands them.",
  validateStack: (args, reportViolation) => {
    const steps = machineSteps(args.resources);
    const controlPlanes = new Set(machinesWriting(steps, CLUSTER_CA_KEY));
    // Each machine's kubelet releases, once each (more than one step may name one: install, upgrade).
    const kubelets = new Map<string, { machine: string; release: Version }>();
    for (const { machine, script } of steps) {
      for (const release of releasesIn(script ?? "", "kubelet"))
        kubelets.set(`${machine} ${release.text}`, { machine, release });
    }
    if (kubelets.size === 0) return; // scripts not known yet (a composed program's preview), or no node
    let apiServers = clusterConfigurationVersions(steps);
    if (apiServers.length === 0) {
      apiServers = steps
        .filter((s) => controlPlanes.has(s.machine))
        .flatMap((s) => releasesIn(s.script ?? "", "kubeadm"));
    }
    if (apiServers.length === 0) {
      reportViolation("no control-plane version found (no ClusterConfiguration, no kubeadm on a control plane)");
      return;
    }
    for (const { machine, release } of kubelets.values()) {
      const problem = skewProblem(release, apiServers);
      if (problem) reportViolation(`${machine}: ${problem} (up to 3 minor versions older, never newer)`);
    }
  },
};
