/**
 * What nodeforge will do, as plain data (no Pulumi, no SSH): every step of every machine, node steps, etcd
 * members and the cluster's bootstrap steps, in one shape (PlannedStep).
 */
export * from "./types";
export { planCluster, stepsOn } from "./cluster";
export { planNodeSteps } from "./node-steps";
export { planEtcdMemberStep } from "./etcd-steps";
export { planHypervisorSteps } from "./hypervisor-steps";
export { generateClusterSecrets } from "./generated-secrets";
export {
  clusterNetworkScripts,
  EXTERNAL_ETCD_CA_FILE,
  EXTERNAL_ETCD_CERT_FILE,
  EXTERNAL_ETCD_DIR,
  EXTERNAL_ETCD_KEY_FILE,
  kubeadmInitScript,
  kubeadmJoinScript,
  planClusterSteps,
} from "./cluster-steps";
