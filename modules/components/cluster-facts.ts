/**
 * ClusterFacts: the Kubernetes version a cluster was last rolled to and the settings fixed for its life (name, pod
 * and service CIDRs, DNS domain, etcd topology), kept in Pulumi state. Its provider's check compares the stack file's
 * values with the recorded ones, so `pulumi preview` (and `up`, before any machine is touched: every machine's first
 * step waits for this resource) refuses a skipped minor, a downgrade or a CIDR change with the reason and the
 * versions allowed. Nothing lives on a machine. Loaded by the engine by name (provider-reference.ts).
 */
import * as pulumi from "@pulumi/pulumi";
import { providerReference } from "../provider-reference";
import { checkFactsTransition, formatIssue, type ClusterFacts as Facts } from "../stack";

/** The facts, each its own input (a refusal names the one at fault), and the stack file that asks for them. */
export interface ClusterFactsInputs extends Facts {
  /** The stack file that asks for these facts, for messages. */
  file: string;
}

function factsOf(inputs: Partial<ClusterFactsInputs>): Facts | undefined {
  const { kubernetesVersion, name, podCIDR, serviceCIDR, dnsDomain, etcd, machines } = inputs;
  if (kubernetesVersion === undefined || name === undefined || podCIDR === undefined) return undefined;
  return {
    kubernetesVersion,
    name,
    podCIDR,
    serviceCIDR: serviceCIDR ?? "",
    dnsDomain: dnsDomain ?? "",
    etcd: etcd ?? "",
    // Recorded by an older nodeforge without the machines: none count as joining.
    machines: machines ?? "",
  };
}

export interface ClusterFactsProvider {
  check(
    olds: Partial<ClusterFactsInputs>,
    news: ClusterFactsInputs,
  ): Promise<pulumi.dynamic.CheckResult<ClusterFactsInputs>>;
  diff(id: string, olds: ClusterFactsInputs, news: ClusterFactsInputs): Promise<pulumi.dynamic.DiffResult>;
  create(inputs: ClusterFactsInputs): Promise<{ id: string; outs: ClusterFactsInputs }>;
  read(id: string, props: ClusterFactsInputs): Promise<{ id: string; props: ClusterFactsInputs }>;
  update(id: string, olds: ClusterFactsInputs, news: ClusterFactsInputs): Promise<{ outs: ClusterFactsInputs }>;
}

/** The dynamic provider behind ClusterFacts. Exported so tests can drive it directly. */
export const clusterFactsProvider: ClusterFactsProvider = {
  async check(olds, news) {
    // No recorded facts: a new cluster, or one made before nodeforge recorded them; anything valid goes.
    const recorded = factsOf(olds);
    if (!recorded) return { inputs: news };
    const issues = checkFactsTransition(news.file, recorded, factsOf(news)!);
    return {
      inputs: news,
      // The input at fault: `cluster.podCIDR` -> podCIDR.
      failures: issues.map((issue) => ({ property: issue.path.split(".").pop()!, reason: formatIssue(issue) })),
    };
  },
  async diff(_id, olds, news) {
    return { changes: JSON.stringify(factsOf(olds)) !== JSON.stringify(factsOf(news)), replaces: [] };
  },
  async create(inputs) {
    return { id: "cluster-facts", outs: inputs };
  },
  // Nothing lives outside the state: what was recorded is what there is.
  async read(id, props) {
    return { id, props };
  },
  async update(_id, _olds, news) {
    return { outs: news };
  },
};

/** The cluster's recorded facts (see the module comment). */
export class ClusterFacts extends pulumi.dynamic.Resource {
  declare readonly kubernetesVersion: pulumi.Output<string>;

  constructor(name: string, args: ClusterFactsInputs, opts?: pulumi.CustomResourceOptions) {
    super(
      providerReference(clusterFactsProvider, "clusterFactsProvider"),
      name,
      { ...args },
      opts,
      "nodeforge",
      "ClusterFacts",
    );
  }
}
