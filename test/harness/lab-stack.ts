/** The stack file for machines the harness started: pinned host keys, the harness's artifact mirror. */
import type { Lab } from "./machines";

export interface LabStackOptions {
  kubernetesVersion?: string;
  arch?: string;
  /** Extra top-level YAML, e.g. a kubelet: block. */
  extra?: string;
  /** Comment lines written after the schema line. */
  comments?: string[];
}

export function labStackYaml(lab: Lab, options: LabStackOptions = {}): string {
  const lines = [
    "# yaml-language-server: $schema=../schemas/stack.schema.json",
    ...(options.comments ?? []).map((c) => `# ${c}`),
    "cluster:",
    "  name: lab",
    `  kubernetesVersion: "${options.kubernetesVersion ?? "1.34.4"}"`,
    "artifacts:",
    `  kubernetesBaseUrl: ${lab.artifactBaseUrl}`,
    `  crictlBaseUrl: ${lab.crictlBaseUrl}`,
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
