/**
 * What may change between the stack a cluster was built from and the next one. Pure: both specs are already valid
 * on their own; this is about the step from one to the other, which only the two together show (`nodeforge diff`
 * compares two files, `pulumi preview` the stack file against the version the cluster runs).
 */
import { DEFAULT_PINS, supportedKubernetesVersions, type Pins } from "../pins";
import type { StackIssue } from "./errors";
import type { StackSpec } from "./types";

/** `1.36.3` -> [1, 36, 3]; a leading `v` is allowed. */
function versionParts(version: string): [number, number, number] {
  const [major = NaN, minor = NaN, patch = 0] = version.replace(/^v/, "").split(".").map(Number);
  return [major, minor, patch];
}

function compareVersions(a: string, b: string): number {
  const [x, y] = [versionParts(a), versionParts(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}

/**
 * The versions a cluster running `running` may move to: the same minor at the same or a later patch, or the next
 * minor (kubeadm upgrades one minor at a time, and never down), among those nodeforge has checksums for.
 */
export function allowedUpgrades(running: string, pins: Pins = DEFAULT_PINS): string[] {
  const [major, minor] = versionParts(running);
  return supportedKubernetesVersions(pins).filter((version) => {
    const [m, n] = versionParts(version);
    return m === major && (n === minor || n === minor + 1) && compareVersions(version, running) >= 0;
  });
}

/**
 * Why the cluster cannot go from version `running` to `wanted`, or undefined when it can. `file`: the stack file
 * that asks for `wanted`.
 */
export function versionChangeIssue(
  file: string,
  running: string,
  wanted: string,
  pins: Pins = DEFAULT_PINS,
): StackIssue | undefined {
  if (compareVersions(wanted, running) === 0) return undefined;
  const allowed = allowedUpgrades(running, pins);
  if (allowed.includes(wanted)) return undefined;
  const [, runningMinor] = versionParts(running);
  const [, wantedMinor] = versionParts(wanted);
  const why =
    compareVersions(wanted, running) < 0
      ? "is a downgrade (kubeadm cannot roll a cluster back)"
      : wantedMinor > runningMinor + 1
        ? `skips ${wantedMinor - runningMinor - 1 === 1 ? "a minor version" : `${wantedMinor - runningMinor - 1} minor versions`} (kubeadm upgrades one minor at a time)`
        : "is not a version nodeforge has checksums for";
  return {
    file,
    path: "cluster.kubernetesVersion",
    message:
      `'${wanted}' from the running ${running} ${why}; ` +
      `allowed: ${allowed.filter((v) => v !== running).join(", ") || "none (no later version pinned)"}`,
  };
}

/**
 * What a cluster keeps from one stack file to the next, as plain strings: the version it runs and the settings fixed
 * for its life. Small enough to keep in Pulumi state (ClusterFacts), where `pulumi preview` finds the running ones.
 */
export interface ClusterFacts {
  kubernetesVersion: string;
  name: string;
  podCIDR: string;
  serviceCIDR: string;
  dnsDomain: string;
  /** `stacked` or `external`. */
  etcd: string;
  /** The Kubernetes nodes' names, sorted, comma-separated. */
  machines: string;
}

export function clusterFacts(spec: StackSpec): ClusterFacts {
  const { kubernetesVersion, name, podCIDR, serviceCIDR, dnsDomain } = spec.cluster;
  return {
    kubernetesVersion,
    name,
    podCIDR,
    serviceCIDR,
    dnsDomain,
    etcd: spec.etcd ? "external" : "stacked",
    machines: spec.machines
      .map((m) => m.name)
      .sort()
      .join(","),
  };
}

/** Settings a cluster keeps for its life (changing one means a new cluster), and why. */
const FIXED: Record<Exclude<keyof ClusterFacts, "kubernetesVersion" | "machines">, { path: string; why: string }> = {
  name: { path: "cluster.name", why: "the cluster's certificates and kubeconfig name it" },
  podCIDR: { path: "cluster.podCIDR", why: "every node's pod range and the CNI's network are carved from it" },
  serviceCIDR: {
    path: "cluster.serviceCIDR",
    why: "Services keep their addresses and the API server's certificate names the first one",
  },
  dnsDomain: { path: "cluster.dnsDomain", why: "every pod's resolver and the API server's certificate name it" },
  etcd: {
    path: "etcd",
    why: "moving etcd between the control plane and machines of its own is a migration nodeforge does not do",
  },
};

/**
 * Everything wrong with moving a cluster from `previous` to `next`: a version step kubeadm cannot take, and
 * settings fixed for the cluster's life. Each issue names `file` (the stack file that asks for `next`) and the path
 * in it.
 */
export function checkFactsTransition(
  file: string,
  previous: ClusterFacts,
  next: ClusterFacts,
  pins: Pins = DEFAULT_PINS,
): StackIssue[] {
  const issues: StackIssue[] = [];
  const version = versionChangeIssue(file, previous.kubernetesVersion, next.kubernetesVersion, pins);
  if (version) issues.push(version);
  // A machine that joins while the control plane still runs the old version would get the new kubelet first: a
  // kubelet newer than its API server, which Kubernetes does not support and kubeadm's join does not catch.
  const had = new Set(previous.machines.split(","));
  const joining = next.machines.split(",").filter((m) => m !== "" && !had.has(m));
  if (previous.kubernetesVersion !== next.kubernetesVersion && joining.length > 0) {
    issues.push({
      file,
      path: "machines",
      message:
        `${joining.join(", ")} would join while the cluster moves from ${previous.kubernetesVersion} to ` +
        `${next.kubernetesVersion}: add machines and change the version in separate runs`,
    });
  }
  for (const [key, fixed] of Object.entries(FIXED) as [keyof typeof FIXED, (typeof FIXED)[keyof typeof FIXED]][]) {
    if (previous[key] !== next[key]) {
      issues.push({
        file,
        path: fixed.path,
        message: `'${next[key]}' replaces '${previous[key]}', which cannot change on a running cluster: ${fixed.why}`,
      });
    }
  }
  return issues;
}

/** checkFactsTransition for two stack files' specs; issues name `next`'s file. */
export function checkTransition(previous: StackSpec, next: StackSpec, pins: Pins = DEFAULT_PINS): StackIssue[] {
  return checkFactsTransition(next.file, clusterFacts(previous), clusterFacts(next), pins);
}
