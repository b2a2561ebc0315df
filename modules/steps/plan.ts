/** What nodeforge would do on one machine: the applicable steps with their rendered files and scripts. */
import type { Pins } from "../pins";
import type { MachineSpec, StackSpec } from "../stack";
import { stepContext } from "./context";
import { filesHash } from "./hash";
import { STEPS } from "./index";
import type { ManagedFile, Step, StepUnit } from "./types";

export interface PlannedNodeStep {
  step: Step;
  files: ManagedFile[];
  /** sha256 over the files: a change re-runs the script (command triggers). */
  filesHash: string;
  script: string;
  deleteScript?: string;
  /** Units the script enables (watched for drift). */
  units: readonly StepUnit[];
}

export function planMachine(stack: StackSpec, machine: MachineSpec, pins?: Pins): PlannedNodeStep[] {
  const ctx = stepContext(stack, machine, pins);
  return STEPS.filter((step) => step.appliesTo(ctx)).map((step) => {
    const files = step.files(ctx);
    return {
      step,
      files,
      filesHash: filesHash(files),
      script: step.script(ctx),
      deleteScript: step.deleteScript?.(ctx),
      units: step.units ?? [],
    };
  });
}
