/** The cluster's secrets as one Output, from the PKI resources that make them (what planned files are made of). */
import * as pulumi from "@pulumi/pulumi";
import { externalEtcdSecrets, type ClusterSecrets, type ExternalEtcdSecrets } from "../plan";
import type { ClusterPki, EtcdPki } from "../pki";

function etcdSecrets(etcd: EtcdPki | undefined): pulumi.Output<ExternalEtcdSecrets> {
  if (!etcd) return pulumi.output(externalEtcdSecrets(undefined)) as pulumi.Output<ExternalEtcdSecrets>;
  return pulumi
    .all([etcd.caCert, etcd.clientCert, etcd.clientKey, etcd.memberCerts, etcd.memberKeys])
    .apply(([caCert, clientCert, clientKey, memberCerts, memberKeys]) =>
      externalEtcdSecrets({ caCert, clientCert, clientKey, memberCerts, memberKeys }),
    );
}

export function clusterSecrets(pki: ClusterPki, etcd: EtcdPki | undefined): pulumi.Output<ClusterSecrets> {
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
    pulumi.all([cluster, etcdSecrets(etcd)]).apply(([own, external]): ClusterSecrets => ({
      ...(own as Omit<ClusterSecrets, keyof ExternalEtcdSecrets>),
      ...external,
    })),
  );
}
