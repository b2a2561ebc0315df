/**
 * The certificates kubeadm makes on a control plane and renews (`kubeadm certs renew all`, every `kubeadm upgrade`):
 * the ones `kubeadm certs check-expiration` lists, by the names it gives them. They last a year; nodeforge holds
 * none of them, so the steps that make or renew them read their expiry on the machine (MachineStep `certificates`).
 */
import { ADMIN_KUBECONFIG, SUPER_ADMIN_KUBECONFIG } from "./kube-vip";

const PKI = "/etc/kubernetes/pki";

/** A kubeadm certificate: kubeadm's name for it and the file that holds it (a kubeconfig holds a client's). */
export interface KubeadmCertificate {
  name: string;
  path: string;
}

/**
 * A control plane's kubeadm certificates; etcd's own and the API server's etcd client only with stacked etcd (an
 * external etcd cluster's are nodeforge's). super-admin.conf is on the first control plane only: a path that is no
 * file on a machine is left out of what is read there.
 */
export function kubeadmCertificates(stackedEtcd: boolean): KubeadmCertificate[] {
  const certificates: KubeadmCertificate[] = [
    { name: "admin.conf", path: ADMIN_KUBECONFIG },
    { name: "super-admin.conf", path: SUPER_ADMIN_KUBECONFIG },
    { name: "controller-manager.conf", path: "/etc/kubernetes/controller-manager.conf" },
    { name: "scheduler.conf", path: "/etc/kubernetes/scheduler.conf" },
    { name: "apiserver", path: `${PKI}/apiserver.crt` },
    { name: "apiserver-kubelet-client", path: `${PKI}/apiserver-kubelet-client.crt` },
    { name: "front-proxy-client", path: `${PKI}/front-proxy-client.crt` },
  ];
  if (!stackedEtcd) return certificates;
  return [
    ...certificates,
    { name: "apiserver-etcd-client", path: `${PKI}/apiserver-etcd-client.crt` },
    { name: "etcd-server", path: `${PKI}/etcd/server.crt` },
    { name: "etcd-peer", path: `${PKI}/etcd/peer.crt` },
    { name: "etcd-healthcheck-client", path: `${PKI}/etcd/healthcheck-client.crt` },
  ];
}
