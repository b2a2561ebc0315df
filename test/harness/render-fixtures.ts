/**
 * Stacks that together exercise every template branch: every OS x arch, labels, taints, registry mirrors,
 * kubelet reserved/eviction settings, a mirror for release artifacts, and an IPv6 cluster. The template
 * tests render all of them and check the output with the real tools (shellcheck, systemd-analyze, parsers).
 */
import { DEFAULT_PINS, type Pins } from "../../modules/pins";
import { parseStack, SUPPORTED_OS, ARCHES, type Arch, type MachineSpec, type OsName, type StackSpec } from "../../modules/stack";
import { planMachine, type PlannedStep } from "../../modules/steps";

/** A syntactically valid ed25519 host key; the tests never connect, so any key of the right shape does. */
export const TEST_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK3vJEmTrUt6Y+2pBpfHXAl3qpPP9ETGc5JOc7g3J9y4";

export const MIRROR_K8S_BASE = "http://mirror.example.internal:8080/k8s/release";
export const MIRROR_CRICTL_BASE = "http://mirror.example.internal:8080/cri-tools";
export const REGISTRY_MIRRORS: Record<string, string[]> = {
  "docker.io": ["https://mirror-a.example.internal", "http://mirror-b.example.internal:5000"],
  "registry.example.com:5000": ["https://cache.example.internal/v2-proxy"],
};

/** Machine name used in the fixtures for one OS and arch, e.g. `ubuntu-24-04-arm64`. */
export function machineName(os: OsName, arch: Arch): string {
  return `${os.replace(/\./g, "-")}-${arch}`;
}

/** YAML for one machine; the first machine of a stack is the control plane. */
function machineYaml(os: OsName, arch: Arch, index: number, address: string): string {
  const role = index === 0 ? "control-plane" : "worker";
  // Every second machine carries labels and taints, so both the empty and the filled forms get rendered.
  const extras =
    index % 2 === 1
      ? [
          "    labels:",
          "      topology.kubernetes.io/zone: rack-1",
          "      example.com/tier: batch_v2.1",
          "    taints:",
          "      - { key: dedicated, value: batch, effect: NoSchedule }",
          "      - { key: example.com/noisy, effect: PreferNoSchedule }",
        ]
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

/** IPv4 stack: every OS x arch, mirrors for registries and artifacts, reserved and eviction settings. */
export function ipv4StackYaml(kubernetesVersion = "1.34.4"): string {
  const machines = osArchPairs().map(({ os, arch }, i) => machineYaml(os, arch, i, `192.0.2.${10 + i}`));
  return [
    "cluster:",
    "  name: fixtures",
    `  kubernetesVersion: "${kubernetesVersion}"`,
    "  podCIDR: 10.244.0.0/16",
    "  serviceCIDR: 10.96.0.0/12",
    "kubelet:",
    "  maxPods: 150",
    "  podPidsLimit: 4096",
    "  systemReserved: { cpu: 100m, memory: 256Mi }",
    "  kubeReserved: { cpu: 200m, memory: 512Mi, ephemeral-storage: 1Gi }",
    '  evictionHard: { memory.available: 100Mi, nodefs.available: "10%" }',
    "containerd:",
    "  registryMirrors:",
    ...Object.entries(REGISTRY_MIRRORS).map(([host, urls]) => `    "${host}": [${urls.map((u) => `"${u}"`).join(", ")}]`),
    "artifacts:",
    `  kubernetesBaseUrl: ${MIRROR_K8S_BASE}`,
    `  crictlBaseUrl: ${MIRROR_CRICTL_BASE}`,
    "machines:",
    ...machines,
    "",
  ].join("\n");
}

/** IPv6 stack with defaults everywhere else (no mirrors, no reserved settings, upstream artifact URLs). */
export function ipv6StackYaml(kubernetesVersion = "1.35.1"): string {
  const machines = osArchPairs().map(({ os, arch }, i) => machineYaml(os, arch, i, `2001:db8::${(10 + i).toString(16)}`));
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
  steps: PlannedStep[];
}

/** The fixture stacks, validated by the real stack loader. */
export function fixtureStacks(): { variant: string; stack: StackSpec }[] {
  return [
    { variant: "ipv4", stack: parseStack(ipv4StackYaml(), "fixtures-ipv4.yaml") },
    { variant: "ipv6", stack: parseStack(ipv6StackYaml(), "fixtures-ipv6.yaml") },
  ];
}

/** Every planned step of every machine of every fixture stack. */
export function renderAll(pins: Pins = DEFAULT_PINS): RenderedMachine[] {
  return fixtureStacks().flatMap(({ variant, stack }) =>
    stack.machines.map((machine) => ({ variant, stack, machine, steps: planMachine(stack, machine, pins) })),
  );
}

/** The planned step with this name; throws when the step did not apply, so a test cannot silently skip it. */
export function stepOf(rendered: RenderedMachine, name: string): PlannedStep {
  const step = rendered.steps.find((s) => s.step.name === name);
  if (!step) throw new Error(`${rendered.machine.name}: step ${name} was not planned`);
  return step;
}

/** The file with this path in a planned step; throws when it is missing. */
export function fileOf(step: PlannedStep, path: string): string {
  const file = step.files.find((f) => f.path === path);
  if (!file) throw new Error(`${step.step.name}: no file ${path} (has ${step.files.map((f) => f.path).join(", ")})`);
  return file.content;
}
