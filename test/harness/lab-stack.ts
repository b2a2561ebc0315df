/**
 * The stack file for machines the harness started: pinned host keys, the harness's artifact mirror and the
 * checksums of what that mirror serves (`artifacts.sha256`).
 */
import type { Arch, BinaryChecksums } from "../../modules/stack/types";
import type { Lab } from "./machines";

/**
 * The Kubernetes version of a lab stack that does not name one: a pinned release .ci/install-kubernetes does not
 * build (its kubelet, kubeadm and kubectl are the mirror's doubles), whose containerd release is the one
 * .ci/install-cluster-components builds (so containerd itself is real).
 */
export const LAB_DEFAULT_KUBERNETES_VERSION = "1.36.4";

export interface LabStackOptions {
  kubernetesVersion?: string;
  arch?: string;
  /** Extra top-level YAML, e.g. a kubelet: block. */
  extra?: string;
  /** Comment lines written after the schema line. */
  comments?: string[];
  /** What the mirror serves for the version and arch; default: the lab mirror's own files. */
  checksums?: BinaryChecksums;
  /** Extra lines of the `cluster:` block (indented by two), e.g. controlPlaneEndpoint. */
  cluster?: string[];
  /** Each machine's role by name; default: the first a control plane, the others workers. */
  roles?: Record<string, "control-plane" | "worker">;
}

/**
 * The checksums of what the artifact mirror serves for kubelet, kubeadm, kubectl, crictl, the CNI plugins,
 * containerd, runc and etcd (doubles, or real builds).
 */
export function servedChecksums(lab: Lab, version: string, arch: Arch): BinaryChecksums {
  const { pins } = lab.artifacts;
  const release = pins.kubernetes[version];
  const crictl = release && pins.crictl[release.crictlVersion]?.[arch];
  const cniPlugins = release && pins.cniPlugins[release.cniPluginsVersion]?.[arch];
  const containerd = release && pins.containerd[release.containerdVersion]?.[arch];
  if (!release || !crictl || !cniPlugins || !containerd) {
    throw new Error(`lab: no test doubles for Kubernetes ${version} ${arch}`);
  }
  return {
    ...release.binaries[arch],
    crictl,
    cniPlugins,
    containerd,
    runc: pins.runc.sha256[arch],
    etcd: pins.etcd.sha256[arch],
  };
}

export function labStackYaml(lab: Lab, options: LabStackOptions = {}): string {
  const version = options.kubernetesVersion ?? LAB_DEFAULT_KUBERNETES_VERSION;
  const arch = (options.arch ?? "amd64") as Arch;
  const sums = options.checksums ?? servedChecksums(lab, version, arch);
  const lines = [
    "# yaml-language-server: $schema=../schemas/stack.schema.json",
    ...(options.comments ?? []).map((c) => `# ${c}`),
    "cluster:",
    "  name: lab",
    `  kubernetesVersion: "${version}"`,
    ...(options.cluster ?? []).map((line) => `  ${line}`),
    "artifacts:",
    `  kubernetesBaseUrl: ${lab.artifactBaseUrl}`,
    `  crictlBaseUrl: ${lab.crictlBaseUrl}`,
    `  cniPluginsBaseUrl: ${lab.cniPluginsBaseUrl}`,
    `  etcdBaseUrl: ${lab.artifacts.etcdBaseUrl}`,
    `  containerdBaseUrl: ${lab.artifacts.containerdBaseUrl}`,
    `  runcBaseUrl: ${lab.artifacts.runcBaseUrl}`,
    "  sha256:",
    `    ${arch}:`,
    ...Object.entries(sums).map(([binary, sum]) => `      ${binary}: "${sum}"`),
    options.extra ?? "",
    "machines:",
    ...lab.machines.flatMap((m, i) => [
      `  - name: ${m.name}`,
      `    address: ${m.address}`,
      `    role: ${options.roles?.[m.name] ?? (i === 0 ? "control-plane" : "worker")}`,
      "    os: debian-12",
      ...(options.arch ? [`    arch: ${options.arch}`] : []),
      `    hostKey: ${m.hostKey}`,
    ]),
  ];
  return `${lines.join("\n")}\n`;
}

/**
 * The settings of a stack whose machines become a real cluster in this lab: they are containers on a cgroup v1
 * host (the kubelet and kubeadm must accept it, kube-proxy must leave the host's conntrack table alone, containerd
 * must not lower OOM scores), they pull every image through registry mirrors from the lab's registry, and the pod
 * network is the real flannel's release manifest from the lab's mirror.
 */
export function labClusterYaml(lab: Lab): string {
  const registry = lab.registry ?? fail("the lab has no image registry (startMachines: imageRegistry)");
  const flannel = lab.artifacts.flannel ?? fail("no flannel build: run `bash .ci/install-cluster-components`");
  const mirror = JSON.stringify([`http://${registry.host}`]);
  return [
    "kubelet:\n  failCgroupV1: false",
    "kubeProxy:\n  conntrackMaxPerCore: 0",
    "containerd:\n  restrictOOMScoreAdj: true",
    `  registryMirrors:\n    registry.k8s.io: ${mirror}\n    ghcr.io: ${mirror}\n    docker.io: ${mirror}`,
    `cni:\n  plugin: flannel\n  manifestUrl: ${flannel.manifestUrl}\n  sha256: ${flannel.sha256}\n`,
  ].join("\n");
}

/**
 * What every site's machines have and the lab's lack until this runs: a resolver and a default gateway (both the
 * host's bridge address; the host forwards nothing and answers no DNS, so nothing outside the lab is reachable).
 * CoreDNS forwards what is not the cluster's to the node's resolvers and refuses to start without one; a process
 * on a node reaches a Service's cluster IP only if the kernel has a route towards it before kube-proxy's NAT rules
 * rewrite the destination (flanneld reaching the API as 10.96.0.1 does).
 */
export async function setLabSiteNetwork(lab: Lab): Promise<void> {
  const gateway = lab.network.hostAddress;
  for (const machine of lab.machines) {
    const result = await machine.run(
      `printf 'nameserver %s\\n' ${gateway} > /etc/resolv.conf && ip route replace default via ${gateway}`,
    );
    if (result.code !== 0) throw new Error(`${machine.name}: cannot set its resolver and gateway: ${result.stderr}`);
  }
}

function fail(message: string): never {
  throw new Error(`lab: ${message}`);
}
