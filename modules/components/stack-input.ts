/**
 * What a Cluster is built from: a stack file's path, a validated StackSpec, or the stack file's content as an object
 * (a stack document) whose machines' addresses and host keys may be other resources' outputs: a cloud's servers, a
 * hypervisor's VMs made in the same program. Such a document is validated twice: at once with stand-ins for the
 * values not known yet (the plan's shape: which steps, files and units, in which order, never depends on them), and
 * again once they are known (what the files say).
 */
import * as pulumi from "@pulumi/pulumi";
import { stringify } from "yaml";
import type { Pins } from "../pins";
import { loadStackFile, parseStack, type OsName, type Role, type StackSpec } from "../stack";
import type { Reach } from "./connection";

/** A machine of a stack document (schemas/stack.schema.json `machines[]`). */
export interface MachineDocument {
  name: string;
  /** The address nodeforge reaches the machine at and the node's IP: known, or another resource's output. */
  address: pulumi.Input<string>;
  /** The machine's SSH host key, `<type> <base64>`, pinned for every connection: known, or another resource's output. */
  hostKey: pulumi.Input<string>;
  role: Role;
  os: OsName;
  /** The machine's other settings (arch, ssh, labels, taints, ...), as in a stack file. */
  [setting: string]: unknown;
}

/** A stack file's content as an object (schemas/stack.schema.json); every machine's address and host key an Input. */
export interface StackDocument {
  cluster: { name: string; kubernetesVersion: string; [setting: string]: unknown };
  machines: MachineDocument[];
  /** The other top-level settings (ssh, kubelet, cni, etcd, artifacts, ...), as in a stack file. */
  [setting: string]: unknown;
}

/** A stack file's path, a validated StackSpec, or a stack document. */
export type StackInput = string | StackSpec | StackDocument;

export interface ResolvedStack {
  /** The stack with stand-ins for values not known yet: what the plan's shape is made from. */
  shape: StackSpec;
  /** The stack once every value is known; absent when `shape` is already it. */
  known?: pulumi.Output<StackSpec>;
  /** Every machine's (Kubernetes node or etcd member) address and host key, as given, by name. */
  reach: Map<string, Reach>;
}

/** A stand-in ed25519 host key (32 zero bytes): well-formed, and no machine's. */
const STAND_IN_HOST_KEY = (() => {
  const field = (bytes: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, bytes.length]), bytes]);
  const blob = Buffer.concat([field(Buffer.from("ssh-ed25519")), field(Buffer.alloc(32))]);
  return `ssh-ed25519 ${blob.toString("base64")}`;
})();

/** The n-th stand-in address, from 198.18.0.0/15 (set aside for benchmarks, RFC 2544): no machine's. */
function standInAddress(n: number): string {
  return `198.18.${Math.floor(n / 250)}.${(n % 250) + 1}`;
}

/** A value another resource gives later (an Output, or a promise); a string or a missing value is known now. */
function isPending(value: pulumi.Input<string> | undefined): boolean {
  return pulumi.Output.isInstance(value) || value instanceof Promise;
}

function isStackSpec(input: StackSpec | StackDocument): input is StackSpec {
  // A validated StackSpec names its file; a stack document has no such setting (the schema allows none).
  return typeof (input as { file?: unknown }).file === "string";
}

/** The document's machines, Kubernetes nodes and external etcd members alike. */
function machinesOf(doc: StackDocument): MachineDocument[] {
  const etcd = (doc.etcd as { external?: { machines?: MachineDocument[] } } | undefined)?.external?.machines ?? [];
  return [...doc.machines, ...etcd];
}

function reachOf(spec: StackSpec): Map<string, Reach> {
  const machines = [...spec.machines, ...(spec.etcd?.external.machines ?? [])];
  return new Map(machines.map((m) => [m.name, { address: m.address, hostKey: m.hostKey }]));
}

/**
 * The stack a Cluster is built from. `label` names a document in error messages (`<label>: machines[1].address:
 * ...`), as a stack file's path does.
 */
export function resolveStack(input: StackInput, label: string, pins: Pins): ResolvedStack {
  if (typeof input === "string") {
    const spec = loadStackFile(input, pins);
    return { shape: spec, reach: reachOf(spec) };
  }
  if (isStackSpec(input)) return { shape: input, reach: reachOf(input) };

  // Each value not known yet (an Output, or a promise) gets a stand-in; the known ones stay.
  const pending: pulumi.Input<string>[] = [];
  const filled = (values: string[] | undefined) => {
    let next = 0;
    const fill = (value: pulumi.Input<string>, standIn: string): pulumi.Input<string> => {
      if (!isPending(value)) return value;
      const index = next++;
      return values ? (values[index] as string) : standIn;
    };
    const copy = copyKeepingInputs(input);
    machinesOf(copy).forEach((machine, i) => {
      const original = machinesOf(input)[i]!;
      machine.address = fill(original.address, standInAddress(i));
      machine.hostKey = fill(original.hostKey, STAND_IN_HOST_KEY);
    });
    return copy;
  };
  for (const machine of machinesOf(input)) {
    for (const value of [machine.address, machine.hostKey]) if (isPending(value)) pending.push(value);
  }
  const parse = (doc: StackDocument) => parseStack(stringify(doc), label, pins);
  const reach = new Map(machinesOf(input).map((m) => [m.name, { address: m.address, hostKey: m.hostKey }]));
  const shape = parse(filled(undefined));
  if (pending.length === 0) return { shape, reach };
  const known = pulumi.all(pending).apply((values) => parse(filled(values)));
  return { shape, known, reach };
}

/** A deep copy of the document with its Input values left as they are (they are replaced right after). */
function copyKeepingInputs(doc: StackDocument): StackDocument {
  const copy = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(copy);
    if (
      value !== null &&
      typeof value === "object" &&
      !pulumi.Output.isInstance(value) &&
      !(value instanceof Promise)
    ) {
      return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, copy(item)]));
    }
    return value;
  };
  return copy(doc) as StackDocument;
}
