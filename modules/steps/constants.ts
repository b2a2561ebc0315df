/**
 * Values that more than one file on a node must agree on. Each is defined here once and passed to every
 * template that needs it.
 */
export const CGROUP_DRIVER = "systemd";
export const CONTAINERD_SOCKET = "/run/containerd/containerd.sock";
export const CRI_ENDPOINT = `unix://${CONTAINERD_SOCKET}`;
export const CNI_BIN_DIR = "/opt/cni/bin";
export const CNI_CONF_DIR = "/etc/cni/net.d";
export const CONTAINERD_CERTS_DIR = "/etc/containerd/certs.d";
export const BIN_DIR = "/usr/local/bin";
/** Where runc's release file is installed (containerd finds it by name: /usr/local/sbin leads systemd's PATH). */
export const RUNC_PATH = "/usr/local/sbin/runc";
/** kubeadm writes the base kubelet configuration here on init/join. */
export const KUBELET_BASE_CONFIG = "/var/lib/kubelet/config.yaml";
/** nodeforge's kubelet settings, as a drop-in merged over kubeadm's base configuration. */
export const KUBELET_CONFIG_DIR = "/etc/kubernetes/kubelet.conf.d";
export const KUBELET_ENV_FILE = "/etc/kubernetes/nodeforge-kubelet.env";
/** nodeforge's own state on a machine: stamps of applied configuration, packages it installed. */
export const STATE_DIR = "/var/lib/nodeforge";
/** The kubelet's kubeconfig, written by kubeadm init or join: a machine that has it has joined the cluster. */
export const KUBELET_KUBECONFIG = "/etc/kubernetes/kubelet.conf";
