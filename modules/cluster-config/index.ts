/**
 * The rendered building blocks of a kubeadm cluster with nodeforge's own kube-proxy: kubeadm init/join
 * configuration, the kube-proxy manifest, the kube-vip static pod, the CNI plugin to apply. Pure: no Pulumi, no SSH.
 */
export * from "./cni";
export * from "./endpoint";
export * from "./kubeadm";
export * from "./kubeadm-certificates";
export * from "./kubeadm-resume";
export * from "./kube-proxy";
export * from "./kube-vip";
