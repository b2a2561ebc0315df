/** Certificates nodeforge generates and keeps in Pulumi state. */
export {
  CA_VALIDITY_DAYS,
  EtcdPki,
  etcdPkiProvider,
  generateEtcdPki,
  LEAF_VALIDITY_DAYS,
  type EtcdMemberCertificate,
  type EtcdPkiArgs,
  type EtcdPkiInputs,
  type EtcdPkiMaterial,
  type EtcdPkiMember,
  type EtcdPkiOutputs,
  type EtcdPkiProvider,
} from "./etcd-pki";
export {
  ADMIN_COMMON_NAME,
  ADMIN_ORGANIZATION,
  ADMIN_VALIDITY_DAYS,
  caCertHash,
  CLUSTER_CA_VALIDITY_DAYS,
  CLUSTER_PKI_SECRET_OUTPUTS,
  ClusterPki,
  clusterPkiProvider,
  generateClusterPki,
  type ClusterPkiArgs,
  type ClusterPkiInputs,
  type ClusterPkiOutputs,
  type ClusterPkiProvider,
} from "./cluster-pki";
export { adminKubeconfig, type AdminKubeconfigArgs } from "./kubeconfig";
export {
  convergeHostKeys,
  VmHostKeys,
  vmHostKeysProvider,
  type VmHostKey,
  type VmHostKeysInputs,
  type VmHostKeysOutputs,
  type VmHostKeysProvider,
} from "./vm-host-keys";
export { certificateExpiry } from "./expiry";
export {
  AdminCertificate,
  adminCertificateProvider,
  type AdminCertificateInputs,
  type AdminCertificateOutputs,
  type AdminCertificateProvider,
} from "./admin-certificate";
