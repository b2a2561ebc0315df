/** A machine's node steps (modules/steps: preflight, containerd, kubelet) as planned steps. */
import type { Pins } from "../pins";
import { isControlPlane, type MachineSpec, type StackSpec } from "../stack";
import { planMachine } from "../steps";
import type { PlannedFile, PlannedStep } from "./types";

/**
 * The machine's node steps, each after the one before it; a step that waits for the control plane (the kubelet's
 * configuration on a machine that is not one) also after `controlPlanesReady`, the ids of every control-plane
 * machine's last node step.
 */
export function planNodeSteps(
  stack: StackSpec,
  machine: MachineSpec,
  pins: Pins,
  controlPlanesReady: readonly string[],
): PlannedStep[] {
  const waits = isControlPlane(machine) ? [] : controlPlanesReady;
  let previous: string[] = [];
  return planMachine(stack, machine, pins).map((planned) => {
    const id = `${machine.name}-${planned.step.name}`;
    const files: PlannedFile[] = planned.files.map(({ content, ...meta }) => ({ ...meta, content: { text: content } }));
    const after = planned.step.waitsForControlPlane ? [...previous, ...waits] : previous;
    previous = [id];
    return {
      id,
      step: planned.step.name,
      machine: machine.name,
      title: planned.step.title,
      files,
      script: planned.script,
      deleteScript: planned.deleteScript ?? "",
      units: planned.units,
      triggers: [],
      after,
    };
  });
}
