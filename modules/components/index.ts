export { Cluster, type ClusterArgs, type NodeSummary } from "./cluster";
export { EtcdMember, type EtcdMemberArgs } from "./etcd-member";
export { Node, type NodeArgs } from "./node";
export type { SecretLookup } from "./connection";
