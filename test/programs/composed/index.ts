/**
 * A Pulumi program other than nodeforge's own index.ts: machines come from resources of the same program (here
 * `Lease`, standing where a cloud's server or a hypervisor's VM resource would: its outputs are the machine's
 * address and SSH host key, known only once it is created), and nodeforge's Cluster makes them nodes, from a stack
 * document whose addresses and host keys are those outputs. The test (test/integration/composed-program.test.ts)
 * runs it with the real Pulumi CLI; config `nodeforge:stackFile` names a stack file whose machines the leases hand
 * out, as a provider would.
 */
import { readFileSync } from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { Cluster, type MachineDocument, type StackDocument } from "../../../modules";

/** What the lease is asked for: the machine the provider will hand out (a cloud would pick one itself). */
interface LeaseInputs {
  pool: { address: string; hostKey: string };
}

/**
 * A machine handed out by some provider: its address and host key are outputs that are no inputs, so they are
 * unknown until it exists (a preview of a new stack sees them as such).
 */
class Lease extends pulumi.dynamic.Resource {
  declare readonly address: pulumi.Output<string>;
  declare readonly hostKey: pulumi.Output<string>;

  constructor(name: string, inputs: LeaseInputs) {
    const provider: pulumi.dynamic.ResourceProvider = {
      async create(leased: LeaseInputs) {
        const { address, hostKey } = leased.pool;
        return { id: `lease-${address}`, outs: { ...leased, address, hostKey } };
      },
    };
    super(provider, name, { ...inputs, address: undefined, hostKey: undefined }, {}, "composed", "Lease");
  }
}

const config = new pulumi.Config("nodeforge");
const document = parse(readFileSync(config.require("stackFile"), "utf8")) as StackDocument;
const leases = document.machines.map(
  (machine) =>
    new Lease(`${machine.name}-lease`, {
      pool: { address: machine.address as string, hostKey: machine.hostKey as string },
    }),
);
const machines: MachineDocument[] = document.machines.map((machine, i) => ({
  ...machine,
  address: leases[i]!.address,
  hostKey: leases[i]!.hostKey,
}));

const cluster = new Cluster("composed", {
  stack: { ...document, machines },
  secret: (key) => config.requireSecret(key),
});

export const nodes = cluster.nodeSummaries;
export const apiEndpoint = cluster.apiEndpoint;
