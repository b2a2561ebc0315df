/**
 * A machine that hosts VMs (stack `hypervisors[]`): the parent of its steps (preparing it, one step per VM), which
 * the Cluster creates. Reached like a Node; not a Kubernetes node.
 */
import * as pulumi from "@pulumi/pulumi";
import type { HypervisorSpec } from "../stack";
import { machineAccess, type MachineAccess, type SecretLookup } from "./connection";

export interface HypervisorArgs {
  hypervisor: HypervisorSpec;
  secret: SecretLookup;
}

export class Hypervisor extends pulumi.ComponentResource {
  readonly machineName: string;
  readonly access: MachineAccess;

  constructor(name: string, args: HypervisorArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nodeforge:vm:Hypervisor", name, {}, opts);
    this.machineName = args.hypervisor.name;
    this.access = machineAccess(args.hypervisor, args.secret);
    this.registerOutputs({ machineName: this.machineName });
  }
}
