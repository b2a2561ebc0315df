import { osProfile } from "../os";
import { DEFAULT_PINS, type Pins } from "../pins";
import type { MachineSpec, StackSpec } from "../stack/types";
import type { StepContext } from "./types";

export function stepContext(stack: StackSpec, machine: MachineSpec, pins: Pins = DEFAULT_PINS): StepContext {
  const release = pins.kubernetes[stack.cluster.kubernetesVersion];
  if (!release) {
    throw new Error(`${machine.name}: no pins for Kubernetes ${stack.cluster.kubernetesVersion}`);
  }
  return { stack, machine, os: osProfile(machine.os), pins, release };
}
