export { Cluster, type ClusterArgs, type NodeSummary } from "./cluster";
export { Node, type NodeArgs } from "./node";
export type { SecretLookup } from "./connection";
