/**
 * The stack file for machines the harness started: pinned host keys, the harness's artifact mirror and the
 * checksums of what that mirror serves (`artifacts.sha256`).
 */
import type { Arch, BinaryChecksums } from "../../modules/stack/types";
import type { Lab } from "./machines";

export interface LabStackOptions {
  kubernetesVersion?: string;
  arch?: string;
  /** Extra top-level YAML, e.g. a kubelet: block. */
  extra?: string;
  /** Comment lines written after the schema line. */
  comments?: string[];
  /** What the mirror serves for the version and arch; default: the lab mirror's own files. */
  checksums?: BinaryChecksums;
}

/**
 * The checksums of what the artifact mirror serves for kubelet, kubeadm, kubectl, crictl and the CNI plugins
 * (doubles, or real builds).
 */
export function servedChecksums(lab: Lab, version: string, arch: Arch): BinaryChecksums {
  const { pins } = lab.artifacts;
  const release = pins.kubernetes[version];
  const crictl = release && pins.crictl[release.crictlVersion]?.[arch];
  const cniPlugins = release && pins.cniPlugins[release.cniPluginsVersion]?.[arch];
  if (!release || !crictl || !cniPlugins) throw new Error(`lab: no test doubles for Kubernetes ${version} ${arch}`);
  return { ...release.binaries[arch], crictl, cniPlugins };
}

export function labStackYaml(lab: Lab, options: LabStackOptions = {}): string {
  const version = options.kubernetesVersion ?? "1.34.4";
  const arch = (options.arch ?? "amd64") as Arch;
  const sums = options.checksums ?? servedChecksums(lab, version, arch);
  const lines = [
    "# yaml-language-server: $schema=../schemas/stack.schema.json",
    ...(options.comments ?? []).map((c) => `# ${c}`),
    "cluster:",
    "  name: lab",
    `  kubernetesVersion: "${version}"`,
    "artifacts:",
    `  kubernetesBaseUrl: ${lab.artifactBaseUrl}`,
    `  crictlBaseUrl: ${lab.crictlBaseUrl}`,
    `  cniPluginsBaseUrl: ${lab.cniPluginsBaseUrl}`,
    "  sha256:",
    `    ${arch}:`,
    ...Object.entries(sums).map(([binary, sum]) => `      ${binary}: "${sum}"`),
    options.extra ?? "",
    "machines:",
    ...lab.machines.flatMap((m, i) => [
      `  - name: ${m.name}`,
      `    address: ${m.address}`,
      `    role: ${i === 0 ? "control-plane" : "worker"}`,
      "    os: debian-12",
      ...(options.arch ? [`    arch: ${options.arch}`] : []),
      `    hostKey: ${m.hostKey}`,
    ]),
  ];
  return `${lines.join("\n")}\n`;
}
