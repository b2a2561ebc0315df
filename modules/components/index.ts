/** The Pulumi components: a Cluster of Nodes (and external etcd members), each planned step one resource. */
export { Cluster, type ClusterArgs, type NodeSummary } from "./cluster";
export { EtcdMember, type EtcdMemberArgs } from "./etcd-member";
export { Hypervisor, type HypervisorArgs } from "./hypervisor";
export { Node, type NodeArgs } from "./node";
export type { SecretLookup } from "./connection";
export type { MachineDocument, StackDocument, StackInput } from "./stack-input";
