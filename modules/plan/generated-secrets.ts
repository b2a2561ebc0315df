/**
 * A fresh set of the cluster's secrets made right here, for what runs the plan outside Pulumi: `nodeforge render`
 * (its files show what they would hold) and the provisioning benchmark's plain-ssh baseline. `pulumi up` makes the
 * cluster's own with the PKI resources and keeps them Pulumi secrets.
 */
import { etcdClusterOf } from "../etcd";
import { convergeHostKeys, generateClusterPki, generateEtcdPki } from "../pki";
import type { StackSpec } from "../stack";
import { externalEtcdSecrets, type ClusterSecrets, type VmSecrets } from "./types";

/**
 * `authorizedKey`: the public key each VM authorizes (what the stack's SSH private key config holds); absent, a
 * throwaway key's, for a render that has no config.
 */
export function generateClusterSecrets(stack: StackSpec, authorizedKey?: string): ClusterSecrets {
  const pki = generateClusterPki({ clusterName: stack.cluster.name });
  const etcd = etcdClusterOf(stack);
  const etcdPki = etcd && generateEtcdPki({ clusterName: etcd.name, members: etcd.members });
  const vmNames = stack.machines.filter((m) => m.vm).map((m) => m.name);
  const hostKeys = convergeHostKeys({ vms: vmNames }).keys;
  const login = authorizedKey ?? convergeHostKeys({ vms: ["login"] }).keys["login"]!.publicKey;
  const vms: Record<string, VmSecrets> = {};
  for (const name of vmNames) {
    const key = hostKeys[name]!;
    vms[name] = { hostPrivateKey: key.privateKey, hostPublicKey: key.publicKey, authorizedKey: login };
  }
  return { ...pki, ...externalEtcdSecrets(etcdPki), vms };
}
