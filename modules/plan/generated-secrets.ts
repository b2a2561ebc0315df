/**
 * A fresh set of the cluster's secrets made right here, for what runs the plan outside Pulumi: `nodeforge render`
 * (its files show what they would hold) and the provisioning benchmark's plain-ssh baseline. `pulumi up` makes the
 * cluster's own with the PKI resources and keeps them Pulumi secrets.
 */
import { etcdClusterOf } from "../etcd";
import { generateClusterPki, generateEtcdPki } from "../pki";
import type { StackSpec } from "../stack";
import { externalEtcdSecrets, type ClusterSecrets } from "./types";

export function generateClusterSecrets(stack: StackSpec): ClusterSecrets {
  const pki = generateClusterPki({ clusterName: stack.cluster.name });
  const etcd = etcdClusterOf(stack);
  const etcdPki = etcd && generateEtcdPki({ clusterName: etcd.name, members: etcd.members });
  return { ...pki, ...externalEtcdSecrets(etcdPki) };
}
