/**
 * One machine as a Kubernetes node: its node steps (preflight, containerd, kubelet; modules/steps), each one
 * MachineStep resource after the one before it. Inside a Cluster, the Cluster creates every step itself (the
 * cluster steps that run on this machine too) and the Node is their parent; on its own, a Node prepares its
 * machine with its node steps.
 */
import * as pulumi from "@pulumi/pulumi";
import { DEFAULT_PINS, type Pins } from "../pins";
import { planNodeSteps, type PlannedStep } from "../plan";
import type { MachineSpec, Role, StackSpec } from "../stack";
import { machineAccess, type MachineAccess, type Reach, type SecretLookup } from "./connection";
import { createStep, type StepResources } from "./steps";

export interface NodeArgs {
  /** The stack the machine belongs to (its cluster settings, artifacts, pins). */
  stack: StackSpec;
  /** The machine: one of `stack.machines`. */
  machine: MachineSpec;
  /** Resolves the Pulumi config secrets the machine's SSH settings name (private key, sudo password). */
  secret: SecretLookup;
  /** Version pins and checksums; defaults to nodeforge's own. */
  pins?: Pins;
  /**
   * The planned steps to create under this Node (default: the machine's node steps). A Cluster passes none and
   * creates its plan's steps itself.
   */
  steps?: PlannedStep[];
  /** The machine's address and host key when another resource gives them (default: the machine's own). */
  reach?: Reach;
}

export class Node extends pulumi.ComponentResource {
  readonly machineName: string;
  readonly role: Role;
  /** How this machine is reached, for the steps that run on it. */
  readonly access: MachineAccess;
  /** The steps this Node created itself, by planned id (empty inside a Cluster). */
  readonly steps: StepResources = new Map();

  constructor(name: string, args: NodeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nodeforge:node:Node", name, {}, opts);
    const { machine } = args;
    this.machineName = machine.name;
    this.role = machine.role;
    this.access = machineAccess(machine, args.secret, args.reach);
    const steps = args.steps ?? planNodeSteps(args.stack, machine, args.pins ?? DEFAULT_PINS, []);
    for (const step of steps) createStep(step, { resource: this, access: this.access }, this.steps);
    this.registerOutputs({ machineName: this.machineName, role: this.role });
  }
}
