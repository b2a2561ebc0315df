import { osProfile } from "../os";
import { DEFAULT_PINS, type Pins } from "../pins";
import type { MachineSpec, StackSpec } from "../stack";
import type { StepContext } from "./types";

/**
 * The pins with the stack's own checksums (`artifacts.sha256`, for a mirror serving builds of its own) in place
 * of the upstream ones for its Kubernetes version, crictl and CNI plugins releases, arch by arch.
 */
export function pinsWithStackChecksums(stack: StackSpec, pins: Pins): Pins {
  const version = stack.cluster.kubernetesVersion;
  const release = pins.kubernetes[version];
  const own = Object.entries(stack.artifacts.sha256);
  if (!release || own.length === 0) return pins;
  const binaries = { ...release.binaries };
  const crictl = { ...pins.crictl[release.crictlVersion] } as Pins["crictl"][string];
  const cniPlugins = { ...pins.cniPlugins[release.cniPluginsVersion] } as Pins["cniPlugins"][string];
  for (const [arch, sums] of own) {
    if (!sums) continue;
    const key = arch as keyof typeof binaries;
    binaries[key] = { kubelet: sums.kubelet, kubeadm: sums.kubeadm, kubectl: sums.kubectl };
    crictl[key] = sums.crictl;
    if (sums.cniPlugins) cniPlugins[key] = sums.cniPlugins;
  }
  return {
    ...pins,
    kubernetes: { ...pins.kubernetes, [version]: { ...release, binaries } },
    crictl: { ...pins.crictl, [release.crictlVersion]: crictl },
    cniPlugins: { ...pins.cniPlugins, [release.cniPluginsVersion]: cniPlugins },
  };
}

export function stepContext(stack: StackSpec, machine: MachineSpec, pins: Pins = DEFAULT_PINS): StepContext {
  const effective = pinsWithStackChecksums(stack, pins);
  const release = effective.kubernetes[stack.cluster.kubernetesVersion];
  if (!release) {
    throw new Error(`${machine.name}: no pins for Kubernetes ${stack.cluster.kubernetesVersion}`);
  }
  return { stack, machine, os: osProfile(machine.os), pins: effective, release };
}
