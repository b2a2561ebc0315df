/**
 * nodeforge as a library, for Pulumi TypeScript programs of your own (`import { Cluster } from "nodeforge"`): the
 * Cluster component and its parts, the stack types and loaders, and the plan (what every machine gets, as data).
 * index.ts at the project's root is one such program.
 */
export {
  Cluster,
  EtcdMember,
  Node,
  type ClusterArgs,
  type EtcdMemberArgs,
  type MachineDocument,
  type NodeArgs,
  type NodeSummary,
  type SecretLookup,
  type StackDocument,
  type StackInput,
} from "./components";
export { loadStackFile, parseStack, StackValidationError, type MachineSpec, type StackSpec } from "./stack";
export { planCluster, type PlannedStep } from "./plan";
export { DEFAULT_PINS, type Pins } from "./pins";
