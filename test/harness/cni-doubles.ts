/**
 * TEST DOUBLES of the CNI plugins' release manifests, served by the artifact mirror in place of the real ones (which
 * these machines cannot download, and whose checksums nodeforge has not pinned). Each is a small manifest of the
 * same shape as its release's where nodeforge depends on it — flannel's net-conf.json with the default pod network
 * on one line, calico's DaemonSet without CALICO_IPV4POOL_CIDR — and valid against the Kubernetes API schemas, so
 * what the apply script makes of it can be checked like any rendered manifest. The version is in the text, so each
 * pinned version has its own checksum, as real releases do.
 */
import type { CniPlugin } from "../../modules/pins";

/** URL path of a plugin's manifest double on the artifact mirror. */
export function cniManifestPath(plugin: CniPlugin, version: string): string {
  return `/cni/${plugin}/${version}/${plugin === "flannel" ? "kube-flannel.yml" : "calico.yaml"}`;
}

function flannelDouble(version: string): string {
  return `# nodeforge test double (not the real flannel manifest): flannel ${version}
---
apiVersion: v1
kind: Namespace
metadata:
  name: kube-flannel
  labels:
    pod-security.kubernetes.io/enforce: privileged
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: flannel
  namespace: kube-flannel
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: flannel
rules:
  - apiGroups: [""]
    resources: [nodes]
    verbs: [get, list, watch]
  - apiGroups: [""]
    resources: [nodes/status]
    verbs: [patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: flannel
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: flannel
subjects:
  - kind: ServiceAccount
    name: flannel
    namespace: kube-flannel
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: kube-flannel-cfg
  namespace: kube-flannel
data:
  cni-conf.json: |
    {
      "name": "cbr0",
      "cniVersion": "0.3.1",
      "plugins": [{ "type": "flannel", "delegate": { "hairpinMode": true, "isDefaultGateway": true } }]
    }
  net-conf.json: |
    {
      "Network": "10.244.0.0/16",
      "Backend": { "Type": "vxlan" }
    }
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: kube-flannel-ds
  namespace: kube-flannel
spec:
  selector:
    matchLabels:
      app: flannel
  template:
    metadata:
      labels:
        app: flannel
    spec:
      hostNetwork: true
      priorityClassName: system-node-critical
      serviceAccountName: flannel
      tolerations:
        - operator: Exists
      containers:
        - name: kube-flannel
          image: nodeforge.invalid/test-double/flannel:${version}
          args: [--ip-masq, --kube-subnet-mgr]
          volumeMounts:
            - name: flannel-cfg
              mountPath: /etc/kube-flannel/
      volumes:
        - name: flannel-cfg
          configMap:
            name: kube-flannel-cfg
`;
}

function calicoDouble(version: string): string {
  return `# nodeforge test double (not the real calico manifest): calico ${version}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: calico-node
  namespace: kube-system
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ippools.crd.projectcalico.org
spec:
  group: crd.projectcalico.org
  names:
    kind: IPPool
    listKind: IPPoolList
    plural: ippools
    singular: ippool
  scope: Cluster
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: calico-node
  namespace: kube-system
spec:
  selector:
    matchLabels:
      k8s-app: calico-node
  template:
    metadata:
      labels:
        k8s-app: calico-node
    spec:
      hostNetwork: true
      priorityClassName: system-node-critical
      serviceAccountName: calico-node
      tolerations:
        - operator: Exists
      containers:
        - name: calico-node
          image: nodeforge.invalid/test-double/calico-node:${version}
          env:
            - name: DATASTORE_TYPE
              value: kubernetes
            # The pool comes from kubeadm's podSubnet while CALICO_IPV4POOL_CIDR is unset.
            # - name: CALICO_IPV4POOL_CIDR
            #   value: "192.168.0.0/16"
`;
}

/** The test double of `plugin`'s manifest at `version`. */
export function cniManifestDouble(plugin: CniPlugin, version: string): string {
  return plugin === "flannel" ? flannelDouble(version) : calicoDouble(version);
}
