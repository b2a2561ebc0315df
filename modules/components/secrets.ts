/** The cluster's secrets as one Output, from the PKI resources that make them (what planned files are made of). */
import * as pulumi from "@pulumi/pulumi";
import type { ClusterSecrets } from "../plan";
import type { ClusterPki, EtcdPki } from "../pki";

/** The external etcd cluster's part; empty for stacked etcd, where no planned file names it. */
type EtcdSecrets = Pick<
  ClusterSecrets,
  "externalEtcdCaCert" | "externalEtcdClientCert" | "externalEtcdClientKey" | "externalEtcdMembers"
>;

function etcdSecrets(etcd: EtcdPki | undefined): pulumi.Output<EtcdSecrets> {
  if (!etcd) {
    const none: EtcdSecrets = {
      externalEtcdCaCert: "",
      externalEtcdClientCert: "",
      externalEtcdClientKey: "",
      externalEtcdMembers: { memberCerts: {}, memberKeys: {} },
    };
    return pulumi.output(none) as pulumi.Output<EtcdSecrets>;
  }
  return pulumi
    .all([etcd.caCert, etcd.clientCert, etcd.clientKey, etcd.memberCerts, etcd.memberKeys])
    .apply(([caCert, clientCert, clientKey, memberCerts, memberKeys]) => ({
      externalEtcdCaCert: caCert,
      externalEtcdClientCert: clientCert,
      externalEtcdClientKey: clientKey,
      externalEtcdMembers: { memberCerts, memberKeys },
    }));
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
      ...(own as Omit<ClusterSecrets, keyof EtcdSecrets>),
      ...external,
    })),
  );
}
