/** The whole stack file as Pulumi resources: one Node per machine, workers after the control plane. */
import * as pulumi from "@pulumi/pulumi";
import type { Pins } from "../pins";
import { isControlPlane, type StackSpec } from "../stack/types";
import type { SecretLookup } from "./connection";
import { Node } from "./node";

export interface ClusterArgs {
  stack: StackSpec;
  /** Resolves the Pulumi config secrets the stack file names (SSH keys, sudo passwords). */
  secret: SecretLookup;
  /** Version pins and checksums; defaults to nodeforge's own (tests pass their doubles' checksums). */
  pins?: Pins;
}

export interface NodeSummary {
  name: string;
  role: string;
  address: string;
}

export class Cluster extends pulumi.ComponentResource {
  readonly nodes: Node[];
  /** Name, role and address of every node, in stack-file order. */
  readonly nodeSummaries: NodeSummary[];

  constructor(name: string, args: ClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nodeforge:cluster:Cluster", name, {}, opts);
    const { stack } = args;
    const build = (machines: StackSpec["machines"], controlPlaneReady: pulumi.Resource[]) =>
      machines.map(
        (machine) =>
          new Node(
            machine.name,
            { stack, machine, secret: args.secret, controlPlaneReady, pins: args.pins },
            { parent: this },
          ),
      );
    const controlPlane = build(stack.machines.filter(isControlPlane), []);
    const others = build(
      stack.machines.filter((m) => !isControlPlane(m)),
      controlPlane.map((n) => n.ready),
    );
    const byName = new Map([...controlPlane, ...others].map((n) => [n.machineName, n]));
    this.nodes = stack.machines.map((m) => byName.get(m.name) as Node);
    this.nodeSummaries = stack.machines.map((m) => ({ name: m.name, role: m.role, address: m.address }));
    this.registerOutputs({ nodes: this.nodeSummaries });
  }
}
