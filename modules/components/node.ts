/**
 * One machine as a Kubernetes node: every applicable step becomes RemoteFile resources for its files, one
 * RemoteScript for its script, and a UnitState for each unit the script enables, chained in step order with
 * dependsOn.
 */
import * as pulumi from "@pulumi/pulumi";
import type { Pins } from "../pins";
import { UnitState } from "../remote";
import { planMachine } from "../steps/plan";
import type { MachineSpec, StackSpec } from "../stack/types";
import { isControlPlane } from "../stack/types";
import { machineAccess, type MachineAccess, type SecretLookup } from "./connection";
import { remoteStep } from "./remote-step";

export interface NodeArgs {
  stack: StackSpec;
  machine: MachineSpec;
  secret: SecretLookup;
  /** What steps marked waitsForControlPlane wait for on machines that are not control planes. */
  controlPlaneReady: pulumi.Resource[];
  pins?: Pins;
}

export class Node extends pulumi.ComponentResource {
  /** The last step's script: done means this node is fully provisioned. */
  readonly ready: pulumi.Resource;
  readonly machineName: string;
  readonly role: string;
  /** How this machine is reached (for the cluster bootstrap steps that run on it). */
  readonly access: MachineAccess;

  constructor(name: string, args: NodeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nodeforge:node:Node", name, {}, opts);
    const { machine } = args;
    const access = machineAccess(machine, args.secret);
    const waitForControlPlane = isControlPlane(machine) ? [] : args.controlPlaneReady;

    let previous: pulumi.Resource[] = [];
    for (const planned of planMachine(args.stack, machine, args.pins)) {
      const stepName = `${machine.name}-${planned.step.name}`;
      const before = planned.step.waitsForControlPlane ? [...previous, ...waitForControlPlane] : previous;
      const step = remoteStep(this, {
        machine: machine.name,
        step: planned.step.name,
        access,
        files: planned.files,
        script: planned.script,
        deleteScript: planned.deleteScript,
        triggers: [planned.filesHash],
        dependsOn: before,
      });
      for (const unit of planned.units) {
        // Created after the script that enables the unit; refresh compares it with the machine.
        new UnitState(
          `${stepName}-unit-${unit.name}`,
          {
            target: access.target,
            step: planned.step.name,
            unit: unit.name,
            enabled: true,
            ...(unit.running ? { active: true } : {}),
          },
          { parent: this, dependsOn: [step] },
        );
      }
      previous = [step];
    }
    const last = previous[0];
    if (!last) throw new Error(`${machine.name}: no step applies to this machine`);
    this.ready = last;
    this.machineName = machine.name;
    this.access = access;
    this.role = machine.role;
    this.registerOutputs({ machineName: this.machineName, role: this.role });
  }
}
