/** Stack files for tests and benchmarks, built as YAML text so they go through the real loader. */
import { parseStack } from "../../modules/stack";
import type { StackSpec } from "../../modules/stack";

export const TEST_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMBhQa8V9LpMR1rfCvKqZc3Zt/QzkYAeSH7B/+A9OLVb";

export interface BuildOptions {
  /** Machines after the first (always control-plane) are workers. */
  machines: number;
  kubernetesVersion?: string;
  /** Extra top-level YAML appended verbatim (e.g. an ssh: block). */
  extra?: string;
  os?: string;
}

export function machineAddress(index: number): string {
  return `172.16.${Math.floor(index / 250)}.${(index % 250) + 1}`;
}

export function stackYaml(options: BuildOptions): string {
  const lines = [
    "# yaml-language-server: $schema=../schemas/stack.schema.json",
    "cluster:",
    "  name: test",
    `  kubernetesVersion: "${options.kubernetesVersion ?? "1.36.4"}"`,
    options.extra ?? "",
    "machines:",
  ];
  for (let i = 0; i < options.machines; i++) {
    lines.push(
      `  - name: ${i === 0 ? "cp-1" : `worker-${i}`}`,
      `    address: ${machineAddress(i)}`,
      `    role: ${i === 0 ? "control-plane" : "worker"}`,
      `    os: ${options.os ?? "debian-12"}`,
      `    hostKey: ${TEST_HOST_KEY}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

export function buildStack(options: BuildOptions): StackSpec {
  return parseStack(stackYaml(options), `test-${options.machines}.yaml`);
}
