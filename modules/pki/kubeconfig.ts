/**
 * The admin kubeconfig for a cluster whose CA and admin certificate nodeforge generated (ClusterPki): the same shape
 * as kubeadm's admin.conf (cluster and user named as kubeadm names them, context `<user>@<cluster>`), with the
 * certificates and key embedded as base64 data. Pure: takes plain strings (call it inside an `apply`, and keep the
 * result a secret: it holds the admin's private key).
 */
import { stringify } from "yaml";
import { ADMIN_COMMON_NAME } from "./cluster-pki";

/** What an admin kubeconfig needs; all PEM strings except `clusterName` and `server` (e.g. `https://10.0.0.10:6443`). */
export interface AdminKubeconfigArgs {
  clusterName: string;
  server: string;
  caCert: string;
  clientCert: string;
  clientKey: string;
}

function base64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

/** kubeconfig YAML (apiVersion v1, kind Config) for `kubernetes-admin@<clusterName>`, set as the current context. */
export function adminKubeconfig(args: AdminKubeconfigArgs): string {
  const user = ADMIN_COMMON_NAME;
  const context = `${user}@${args.clusterName}`;
  return stringify(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name: args.clusterName,
          cluster: { "certificate-authority-data": base64(args.caCert), server: args.server },
        },
      ],
      contexts: [{ name: context, context: { cluster: args.clusterName, user } }],
      "current-context": context,
      preferences: {},
      users: [
        {
          name: user,
          user: { "client-certificate-data": base64(args.clientCert), "client-key-data": base64(args.clientKey) },
        },
      ],
    },
    { lineWidth: 0 },
  );
}
