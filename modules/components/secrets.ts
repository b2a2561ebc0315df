/** The cluster's secrets as one Output, from the PKI resources that make them (what planned files are made of). */
import * as pulumi from "@pulumi/pulumi";
import { externalEtcdSecrets, type ClusterSecrets, type ExternalEtcdSecrets, type VmSecrets } from "../plan";
import type { ClusterPki, EtcdPki } from "../pki";

function etcdSecrets(etcd: EtcdPki | undefined): pulumi.Output<ExternalEtcdSecrets> {
  if (!etcd) return pulumi.output(externalEtcdSecrets(undefined)) as pulumi.Output<ExternalEtcdSecrets>;
  return pulumi
    .all([etcd.caCert, etcd.clientCert, etcd.clientKey, etcd.memberCerts, etcd.memberKeys])
    .apply(([caCert, clientCert, clientKey, memberCerts, memberKeys]) =>
      externalEtcdSecrets({ caCert, clientCert, clientKey, memberCerts, memberKeys }),
    );
}

/** `vms`: each VM's seed material by name (components/vms.ts); none without VMs. */
export function clusterSecrets(
  pki: ClusterPki,
  etcd: EtcdPki | undefined,
  vms: pulumi.Output<Record<string, VmSecrets>> = pulumi.output({} as Record<string, VmSecrets>),
): pulumi.Output<ClusterSecrets> {
  const cluster = pulumi.all({
    caCert: pki.caCert,
    caKey: pki.caKey,
    frontProxyCaCert: pki.frontProxyCaCert,
    frontProxyCaKey: pki.frontProxyCaKey,
    etcdCaCert: pki.etcdCaCert,
    etcdCaKey: pki.etcdCaKey,
    serviceAccountKey: pki.serviceAccountKey,
    serviceAccountPub: pki.serviceAccountPub,
    bootstrapToken: pki.bootstrapToken,
    caCertHash: pki.caCertHash,
  });
  return pulumi.secret(
    pulumi.all([cluster, etcdSecrets(etcd), vms]).apply(([own, external, vmSecrets]): ClusterSecrets => ({
      ...(own as Omit<ClusterSecrets, keyof ExternalEtcdSecrets | "vms">),
      ...external,
      vms: vmSecrets,
    })),
  );
}
