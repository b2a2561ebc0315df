/**
 * kube-proxy as nodeforge deploys it, in place of kubeadm's addon (skipped at init): ServiceAccount,
 * ClusterRoleBinding to system:node-proxier, ConfigMap (KubeProxyConfiguration + an in-cluster kubeconfig), and a
 * DaemonSet on every node. One multi-document YAML file, applied with kubectl on a control-plane machine.
 */
import { createHash } from "node:crypto";
import { render } from "../render";
import type { StackSpec } from "../stack";
import { rootFile, type ManagedFile } from "../steps";
import { apiServerUrl } from "./endpoint";
import { NODEFORGE_KUBERNETES_DIR } from "./kubeadm";

export const KUBE_PROXY_MANIFEST = `${NODEFORGE_KUBERNETES_DIR}/kube-proxy.yaml`;
/** Where the DaemonSet mounts its ConfigMap (kubeadm's choice, kept so that the files are where operators look). */
export const KUBE_PROXY_CONFIG_DIR = "/var/lib/kube-proxy";

/** The kube-proxy image of the stack's Kubernetes version. */
export function kubeProxyImage(stack: StackSpec): string {
  return `registry.k8s.io/kube-proxy:v${stack.cluster.kubernetesVersion}`;
}

/** Values of templates/kube-proxy/kube-proxy.yaml.hbs (its ConfigMap files rendered first). */
export function kubeProxyValues(stack: StackSpec): Record<string, unknown> {
  const ipv6 = stack.derived.ipFamily === 6;
  const configConf = render("kube-proxy/config.conf.hbs", {
    bindAddress: ipv6 ? "::" : "0.0.0.0",
    kubeconfigPath: `${KUBE_PROXY_CONFIG_DIR}/kubeconfig.conf`,
    clusterCIDR: stack.cluster.podCIDR,
    mode: stack.kubeProxy.mode,
    hasConntrackMaxPerCore: stack.kubeProxy.conntrackMaxPerCore !== undefined,
    conntrackMaxPerCore: stack.kubeProxy.conntrackMaxPerCore ?? 0,
  });
  // The API server as every node reaches it; the CA and token are the pod's service account's.
  const kubeconfigConf = render("kube-proxy/kubeconfig.conf.hbs", { server: apiServerUrl(stack) });
  const configHash = createHash("sha256").update(configConf).update("\0").update(kubeconfigConf).digest("hex");
  return {
    mode: stack.kubeProxy.mode,
    labels: { "k8s-app": "kube-proxy" },
    configConf: configConf.trimEnd(),
    kubeconfigConf: kubeconfigConf.trimEnd(),
    configHash,
    image: kubeProxyImage(stack),
    configFlag: `--config=${KUBE_PROXY_CONFIG_DIR}/config.conf`,
    configDir: KUBE_PROXY_CONFIG_DIR,
  };
}

/** The kube-proxy manifest (no secrets: the pods authenticate with their service account token), mode 0644. */
export function kubeProxyManifestFile(stack: StackSpec): ManagedFile {
  return rootFile(KUBE_PROXY_MANIFEST, render("kube-proxy/kube-proxy.yaml.hbs", kubeProxyValues(stack)));
}
