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
