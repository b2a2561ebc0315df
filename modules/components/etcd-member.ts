/**
 * The machine of one external etcd member (stack `etcd.external.machines`): the parent of its member step (a
 * MachineStep: certificates and keys from EtcdPki, etcd's configuration and unit, install, start, wait until
 * healthy), which the Cluster creates. The machine is reached like a Node's; it is not a Kubernetes node.
 */
import * as pulumi from "@pulumi/pulumi";
import type { EtcdMachineSpec } from "../stack";
import { machineAccess, type MachineAccess, type Reach, type SecretLookup } from "./connection";

export interface EtcdMemberArgs {
  machine: EtcdMachineSpec;
  secret: SecretLookup;
  /** The machine's address and host key when another resource gives them (default: the machine's own). */
  reach?: Reach;
}

export class EtcdMember extends pulumi.ComponentResource {
  readonly machineName: string;
  readonly access: MachineAccess;

  constructor(name: string, args: EtcdMemberArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nodeforge:etcd:EtcdMember", name, {}, opts);
    this.machineName = args.machine.name;
    this.access = machineAccess(args.machine, args.secret, args.reach);
    this.registerOutputs({ machineName: this.machineName });
  }
}
