/**
 * One machine as a Kubernetes node: every applicable step becomes RemoteFile resources for its files, one
 * remote.Command for its script, and a UnitState for each unit the script enables, chained in step order with
 * dependsOn.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { Pins } from "../pins";
import { RemoteFile, UnitState } from "../remote";
import { scriptCommandLine } from "../remote/command-line";
import { planMachine } from "../steps/plan";
import type { MachineSpec, StackSpec } from "../stack/types";
import { isControlPlane } from "../stack/types";
import { machineAccess, type SecretLookup } from "./connection";

export interface NodeArgs {
  stack: StackSpec;
  machine: MachineSpec;
  secret: SecretLookup;
  /** What steps marked waitsForControlPlane wait for on machines that are not control planes. */
  controlPlaneReady: pulumi.Resource[];
  pins?: Pins;
}

/** `/etc/containerd/config.toml` -> `etc-containerd-config.toml`, for resource names. */
export function pathSlug(path: string): string {
  return path.replace(/^\/+/, "").replace(/[^A-Za-z0-9._-]+/g, "-");
}

export class Node extends pulumi.ComponentResource {
  /** The last step's command: done means this node is fully provisioned. */
  readonly ready: pulumi.Resource;
  readonly machineName: string;
  readonly role: string;

  constructor(name: string, args: NodeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nodeforge:node:Node", name, {}, opts);
    const { machine } = args;
    const access = machineAccess(machine, args.secret);
    const privilege = { sudo: machine.ssh.sudo, sudoPasswordOnStdin: access.sudoStdin !== undefined };
    const waitForControlPlane = isControlPlane(machine) ? [] : args.controlPlaneReady;

    let previous: pulumi.Resource[] = [];
    for (const planned of planMachine(args.stack, machine, args.pins)) {
      const stepName = `${machine.name}-${planned.step.name}`;
      const before = planned.step.waitsForControlPlane ? [...previous, ...waitForControlPlane] : previous;
      const files = planned.files.map(
        (file) =>
          new RemoteFile(
            `${stepName}-${pathSlug(file.path)}`,
            { target: access.target, ...file },
            { parent: this, dependsOn: before },
          ),
      );
      const script = scriptCommandLine(planned.script, privilege);
      const step = new command.remote.Command(
        stepName,
        {
          connection: access.connection,
          create: script,
          // With `update` set, a changed trigger re-runs the script in place. Without it the provider would
          // replace the resource: create the new one, then run the old one's delete, uninstalling the step.
          update: script,
          delete: planned.deleteScript === undefined ? undefined : scriptCommandLine(planned.deleteScript, privilege),
          triggers: [planned.filesHash],
          stdin: access.sudoStdin,
          // PULUMI_COMMAND_STDOUT would need sshd AcceptEnv, and scripts do not read it.
          addPreviousOutputInEnv: false,
        },
        { parent: this, dependsOn: [...before, ...files] },
      );
      for (const unit of planned.units) {
        // Created after the command that enables the unit; refresh compares it with the machine.
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
    this.role = machine.role;
    this.registerOutputs({ machineName: this.machineName, role: this.role });
  }
}
