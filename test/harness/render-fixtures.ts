/**
 * Stacks that together exercise every template branch: every OS x arch, labels, taints, registry mirrors,
 * kubelet reserved/eviction settings, a mirror for release artifacts, and an IPv6 cluster. The template
 * tests render all of them and check the output with the real tools (shellcheck, systemd-analyze, parsers).
 */
import { spawn } from "node:child_process";
import { DEFAULT_PINS, type Pins } from "../../modules/pins";
import { ARCHES, parseStack, SUPPORTED_OS } from "../../modules/stack";
import type { Arch, MachineSpec, OsName, StackSpec, Taint } from "../../modules/stack";
import { planMachine, type PlannedNodeStep } from "../../modules/steps/plan";

/** A syntactically valid ed25519 host key; the tests never connect, so any key of the right shape does. */
export const TEST_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK3vJEmTrUt6Y+2pBpfHXAl3qpPP9ETGc5JOc7g3J9y4";

export const MIRROR_K8S_BASE = "http://mirror.example.internal:8080/k8s/release";
export const MIRROR_CRICTL_BASE = "http://mirror.example.internal:8080/cri-tools";
export const MIRROR_CNI_PLUGINS_BASE = "http://mirror.example.internal:8080/cni-plugins";
export const MIRROR_CONTAINERD_BASE = "http://mirror.example.internal:8080/containerd";
export const MIRROR_RUNC_BASE = "http://mirror.example.internal:8080/runc";
export const REGISTRY_MIRRORS: Record<string, string[]> = {
  "docker.io": ["https://mirror-a.example.internal", "http://mirror-b.example.internal:5000"],
  "registry.example.com:5000": ["https://cache.example.internal/v2-proxy"],
};

/** Machine name used in the fixtures for one OS and arch, e.g. `ubuntu-24-04-arm64`. */
export function machineName(os: OsName, arch: Arch): string {
  return `${os.replace(/\./g, "-")}-${arch}`;
}

/** Labels and taints of the arm64 machines; amd64 machines have none, so both forms get rendered. */
export const FIXTURE_LABELS: Record<string, string> = {
  "topology.kubernetes.io/zone": "rack-1",
  "example.com/tier": "batch_v2.1",
};
export const FIXTURE_TAINTS: Taint[] = [
  { key: "dedicated", value: "batch", effect: "NoSchedule" },
  { key: "example.com/noisy", effect: "PreferNoSchedule" },
];

/** YAML for one machine; the first machine of a stack is the control plane. */
function machineYaml(os: OsName, arch: Arch, index: number, address: string): string {
  const role = index === 0 ? "control-plane" : "worker";
  const extras =
    arch === "arm64"
      ? [`    labels: ${JSON.stringify(FIXTURE_LABELS)}`, `    taints: ${JSON.stringify(FIXTURE_TAINTS)}`]
      : [];
  return [
    `  - name: ${machineName(os, arch)}`,
    `    address: "${address}"`,
    `    role: ${role}`,
    `    os: ${os}`,
    `    arch: ${arch}`,
    `    hostKey: ${TEST_HOST_KEY}`,
    ...extras,
  ].join("\n");
}

/** Every OS x arch pair, in a stable order. */
export function osArchPairs(): { os: OsName; arch: Arch }[] {
  return SUPPORTED_OS.flatMap((os) => ARCHES.map((arch) => ({ os, arch })));
}

/** What a test may change in the IPv4 fixture stack. */
export interface Ipv4StackOptions {
  kubernetesVersion?: string;
  /** The stack's `artifacts` block; absent keys keep nodeforge's defaults. */
  artifacts?: Record<string, string>;
  registryMirrors?: Record<string, string[]>;
}

/** IPv4 stack: every OS x arch, mirrors for registries and artifacts, reserved and eviction settings. */
export function ipv4StackYaml(options: Ipv4StackOptions = {}): string {
  const artifacts = options.artifacts ?? {
    kubernetesBaseUrl: MIRROR_K8S_BASE,
    crictlBaseUrl: MIRROR_CRICTL_BASE,
    cniPluginsBaseUrl: MIRROR_CNI_PLUGINS_BASE,
    containerdBaseUrl: MIRROR_CONTAINERD_BASE,
    runcBaseUrl: MIRROR_RUNC_BASE,
  };
  const mirrors = options.registryMirrors ?? REGISTRY_MIRRORS;
  const machines = osArchPairs().map(({ os, arch }, i) => machineYaml(os, arch, i, `192.0.2.${10 + i}`));
  // JSON is YAML flow syntax: values with '$', '%' or '~' reach the loader unchanged.
  const mirrorsYaml = JSON.stringify(mirrors);
  const artifactsYaml = JSON.stringify(artifacts);
  return [
    "cluster:",
    "  name: fixtures",
    `  kubernetesVersion: "${options.kubernetesVersion ?? "1.36.4"}"`,
    "  podCIDR: 10.244.0.0/16",
    "  serviceCIDR: 10.96.0.0/12",
    "kubelet:",
    "  maxPods: 150",
    "  podPidsLimit: 4096",
    "  systemReserved: { cpu: 100m, memory: 256Mi }",
    "  kubeReserved: { cpu: 200m, memory: 512Mi, ephemeral-storage: 1Gi }",
    '  evictionHard: { memory.available: 100Mi, nodefs.available: "10%" }',
    "containerd:",
    `  registryMirrors: ${mirrorsYaml}`,
    `artifacts: ${artifactsYaml}`,
    "machines:",
    ...machines,
    "",
  ].join("\n");
}

/** IPv6 stack with defaults everywhere else (no mirrors, no reserved settings, upstream artifact URLs). */
export function ipv6StackYaml(kubernetesVersion = "1.35.1"): string {
  const address = (i: number) => `2001:db8::${(10 + i).toString(16)}`;
  const machines = osArchPairs().map(({ os, arch }, i) => machineYaml(os, arch, i, address(i)));
  return [
    "cluster:",
    "  name: fixtures-v6",
    `  kubernetesVersion: "${kubernetesVersion}"`,
    "  podCIDR: fd00:10:244::/56",
    "  serviceCIDR: fd00:10:96::/112",
    "  dnsDomain: v6.example",
    "machines:",
    ...machines,
    "",
  ].join("\n");
}

export interface RenderedMachine {
  /** Which fixture stack the machine comes from: "ipv4" or "ipv6". */
  variant: string;
  stack: StackSpec;
  machine: MachineSpec;
  steps: PlannedNodeStep[];
}

/** Parses a stack with the real loader (schema, defaults, semantic checks) and plans every machine. */
export function renderStack(variant: string, yamlText: string, pins: Pins = DEFAULT_PINS): RenderedMachine[] {
  const stack = parseStack(yamlText, `fixtures-${variant}.yaml`, pins);
  return stack.machines.map((machine) => ({ variant, stack, machine, steps: planMachine(stack, machine, pins) }));
}

/** Every planned step of every machine of both fixture stacks (IPv4 with mirrors, IPv6 with defaults). */
export function renderAll(pins: Pins = DEFAULT_PINS): RenderedMachine[] {
  return [...renderStack("ipv4", ipv4StackYaml(), pins), ...renderStack("ipv6", ipv6StackYaml(), pins)];
}

/** The planned step with this name; throws when the step did not apply, so a test cannot silently skip it. */
export function stepOf(rendered: RenderedMachine, name: string): PlannedNodeStep {
  const step = rendered.steps.find((s) => s.step.name === name);
  if (!step) throw new Error(`${rendered.machine.name}: step ${name} was not planned`);
  return step;
}

/** The file with this path in a planned step; throws when it is missing. */
export function fileOf(step: PlannedNodeStep, path: string): string {
  const file = step.files.find((f) => f.path === path);
  if (!file) throw new Error(`${step.step.name}: no file ${path} (has ${step.files.map((f) => f.path).join(", ")})`);
  return file.content;
}

export interface ProcessResult {
  /** Exit code; null when the process was killed (timeout). */
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command without a shell and collects its output. Asynchronous on purpose: tests that serve HTTP
 * from this process need the event loop to keep running while curl talks to it.
 */
export function runProcess(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      timeout: options.timeoutMs ?? 30_000,
      // No stdin pipe unless there is input: a command that exits without reading it would raise EPIPE.
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}
