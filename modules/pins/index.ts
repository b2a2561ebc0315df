/**
 * Every version pin and artifact checksum nodeforge uses, in one place.
 *
 * Checksums are the sha256 of the release files as published for the upstream releases (Kubernetes
 * binaries from the `bin/linux/<arch>/` tree, crictl release tarballs). A mirror must serve the same bytes.
 * Kubernetes 1.35.8, 1.36.3 and 1.36.4 and crictl 1.36.0 are copied from kubernetes-sigs/kubespray's
 * roles/kubespray_defaults/vars/main/checksums.yml at commit 46dbdd3994b3 (2026-08-21), which also confirms the
 * older 1.35.1 and crictl 1.35.0 values below; the pause image of each release is its kubeadm's PauseVersion
 * (cmd/kubeadm/app/constants in the k8s.io/kubernetes module of that release). The CNI reference plugins
 * (containernetworking/plugins release tarballs) come from the same file's `cni_binary_checksums`, etcd's release
 * tarballs from its `etcd_binary_checksums`, containerd's release tarballs from its `containerd_archive_checksums`
 * and runc's release files from its `runc_checksums`. Kubernetes 1.34 left upstream support (1.35 to 1.37 are
 * supported); kubespray's snapshot has no 1.37 checksums yet, so nodeforge pins none.
 */
import type { Arch } from "../stack";

export type KubeBinary = "kubelet" | "kubeadm" | "kubectl";

/** The CNI plugins nodeforge installs from their upstream manifests (stack `cni.plugin`, besides `none`). */
export const CNI_PLUGINS = ["flannel", "calico"] as const;
export type CniPlugin = (typeof CNI_PLUGINS)[number];

/** One upstream CNI release: the manifest nodeforge applies, byte for byte as published (then adapted, see cni.ts). */
export interface CniRelease {
  version: string;
  /** The release's own manifest URL; a stack may name a mirror of it (`cni.manifestUrl`). */
  manifestUrl: string;
  /**
   * sha256 of the manifest, recorded only once someone has downloaded and checked it. Absent: nodeforge has no
   * verified checksum, and a stack that selects the plugin must give its own (`cni.sha256`) — nodeforge never
   * applies a manifest it cannot verify.
   */
  sha256?: string;
}

export interface KubernetesRelease {
  /** Matching cri-tools (crictl) release. */
  crictlVersion: string;
  /**
   * CNI reference plugins release (loopback, bridge, host-local, portmap, ...) installed into /opt/cni/bin, as
   * kubeadm's packages do with kubernetes-cni: containerd needs `loopback` for every pod sandbox, flannel's
   * configuration chains `portmap`.
   */
  cniPluginsVersion: string;
  /**
   * containerd release (containerd-<v>-linux-<arch>.tar.gz) installed on every node: one containerd's RELEASES.md
   * lists for this Kubernetes minor (1.35: 2.2.0+; 1.36: 2.3.0+ and 2.2.0+).
   */
  containerdVersion: string;
  /** Sandbox (pause) image this release's kubeadm expects; containerd and kubelet must agree on it. */
  pauseImage: string;
  binaries: Record<Arch, Record<KubeBinary, string>>;
}

export interface Pins {
  kubernetes: Record<string, KubernetesRelease>;
  crictl: Record<string, Record<Arch, string>>;
  /** sha256 of the CNI plugins release tarball (cni-plugins-linux-<arch>-v<version>.tgz), by version. */
  cniPlugins: Record<string, Record<Arch, string>>;
  /** sha256 of the containerd release tarball (containerd-<v>-linux-<arch>.tar.gz), by version. */
  containerd: Record<string, Record<Arch, string>>;
  /** The runc release every node runs under containerd (the single file runc.<arch>). */
  runc: { version: string; sha256: Record<Arch, string> };
  /**
   * The etcd release external etcd members run (etcd-v<version>-linux-<arch>.tar.gz): kubeadm refuses an external
   * etcd below its MinExternalEtcdVersion (3.5.24-0 for Kubernetes 1.36); 3.6.8 is what kubeadm 1.36 runs itself.
   */
  etcd: { version: string; sha256: Record<Arch, string> };
  /** kube-vip image (control-plane VIP static pod, controlPlaneLoadBalancer.type kube-vip), pinned by tag. */
  kubeVipImage: string;
  cni: Record<CniPlugin, CniRelease>;
}

export const DEFAULT_PINS: Pins = {
  kubernetes: {
    "1.35.1": {
      crictlVersion: "1.35.0",
      cniPluginsVersion: "1.9.1",
      containerdVersion: "2.2.7",
      pauseImage: "registry.k8s.io/pause:3.10.1",
      binaries: {
        amd64: {
          kubelet: "e7343310e03ff0d424df4397bdfa4468947d6d1f0f93dac586c1e8d6e4086d5d",
          kubeadm: "8a7ff344eef1bfba88f9a74b3fdc9ea4448c94f1b3cefb8c0aeeaf1f96e05053",
          kubectl: "36e2f4ac66259232341dd7866952d64a958846470f6a9a6a813b9117bd965207",
        },
        arm64: {
          kubelet: "73475c6db8fd8a9780b1b378fa2f917875e6146166c24603c1abc6eafd4493a8",
          kubeadm: "80097a3c4ef824f4edfe131d2bd429772c4be3a460c42a44f2320164a917de32",
          kubectl: "706256e21a4e9192ee62d1a007ac0bfcff2b0b26e92cc7baad487a6a5d08ff82",
        },
      },
    },
    "1.35.8": {
      crictlVersion: "1.35.0",
      cniPluginsVersion: "1.9.1",
      containerdVersion: "2.2.7",
      pauseImage: "registry.k8s.io/pause:3.10.1",
      binaries: {
        amd64: {
          kubelet: "6971b9f95e54dbed67a2271abe6e78f8cc2894494649f3cf39e4b25a82dca923",
          kubeadm: "1bbc64a2be5b300880ae9330c6bba592ec2a2b8ecb79c527b0c7cc0f44070e5e",
          kubectl: "874d5e72dbb819f43cff16bcd1e4f8bac5b7f2361fe1e55049b0a6c676fb0cbf",
        },
        arm64: {
          kubelet: "7744f84c49df6dff7d0a0471f9acef31568c02459659de83aa279cf3a04b1714",
          kubeadm: "8956730f3ae46ebdb95e95845542f71d844f74affd69c14634a58d1fe3510d86",
          kubectl: "cc749967b62f4422260bc9c0aa7a7c55f45175ae38cb8d95767b5d2b7e04c1fd",
        },
      },
    },
    "1.36.3": {
      crictlVersion: "1.36.0",
      cniPluginsVersion: "1.9.1",
      containerdVersion: "2.3.4",
      pauseImage: "registry.k8s.io/pause:3.10.2",
      binaries: {
        amd64: {
          kubelet: "46707a53209f826ad0f0d62371ac69cd00e78fd9a8176cf5f6f87f18f7f8b718",
          kubeadm: "bba1733c701bf70ec74ba1cc3fd5745404c1134a8a4b0a5f8560cc9832023421",
          kubectl: "ebbd080e7c2e275093b55915722043257eb24004363e20acb3c4d71919f88336",
        },
        arm64: {
          kubelet: "57205a5daf5883873d87b4914e1e00bdd7707acd075714788cfb0fc1f60bc414",
          kubeadm: "276cfbdc43b10fef663288cc1ed76abf77b1b7f700e9f1c053cb5dc3115484de",
          kubectl: "3d86f24401c41ae5a46ac50eef8865fe891d3647d324a0836f6c63757a126e62",
        },
      },
    },
    "1.36.4": {
      crictlVersion: "1.36.0",
      cniPluginsVersion: "1.9.1",
      containerdVersion: "2.3.4",
      pauseImage: "registry.k8s.io/pause:3.10.2",
      binaries: {
        amd64: {
          kubelet: "cf2562db46c48ab84cc3791540778ee7fb1a0a008529adbb434723dd02ed8b4b",
          kubeadm: "10d054585907f2c8bb823c84f6a66b3bd2a474c3d795475f04e9a44f78650fe6",
          kubectl: "8b8f088da2dab964f853b38464033b1be15ede2839eca751482357c45abdd05a",
        },
        arm64: {
          kubelet: "fd53ea3fcbd077844f50a3c67e9b52f62972a563674956bab0c0f4fb7ea37d50",
          kubeadm: "6a849c07d3e1c708f5c40f1ac8be03a56124204dfc7e1931e4113634019c0dad",
          kubectl: "0ecf44450ee6063bf19dd166a103ee6df4a9034455c2abce626e6eea657d73fb",
        },
      },
    },
  },
  crictl: {
    "1.35.0": {
      amd64: "2e141e5b22cb189c40365a11807d69b76b9b3caced89fac2f4ec879408ce2177",
      arm64: "519071de89b64c43e2a1661bb5489c6c3fd5e9e5fcef75e50e542b0c891f1118",
    },
    "1.36.0": {
      amd64: "83855e114566a8a8c44c548d515670f51de3a5e1da8b2effb59870e2f10c25a3",
      arm64: "68328594ccf780a80ae2b092d9f6ce484eec7cf540c275242e8fd954bfd95332",
    },
  },
  cniPlugins: {
    "1.9.1": {
      amd64: "b98f74a0f8522f0a83867178729c1aa70f2158f90c45a2ca8fa791db1c76b303",
      arm64: "56171987d3947707c3563db2f4001bccaf50fd63468611b9f3cbecb1375ee7ec",
    },
  },
  containerd: {
    "2.2.7": {
      amd64: "91cd216ea26a1b8b512219d3f205375c967e7b7de4dae571bc3dd16bfacd34b5",
      arm64: "84eb0a161e20ad45465202fa2d6d93b3d9b74666c363e9908706d590a86e2618",
    },
    "2.3.4": {
      amd64: "9d68969855fbf676cdb8ed758e420fb048d61f984f61de3e53eddfebe484d168",
      arm64: "a985fbb7e18fc0362d31a055338f5d7b0e087a3e27f14c70d1c5965399a29f95",
    },
  },
  runc: {
    version: "1.4.3",
    sha256: {
      amd64: "f6ae8efc0fa40079e1475e97cbe9d1bd3f106a28d6af78a11d9f1bd565515e60",
      arm64: "633301e2e32f8a5ad54031aab4901eb00308bec677dd15faa2751e8f9dab5ca4",
    },
  },
  etcd: {
    version: "3.6.8",
    sha256: {
      amd64: "cf9cfe91a4856cb90eed9c99e6aee4b708db2c7888b88a6f116281f04b0ea693",
      arm64: "438f56a700d17ce761510a3e63e6fa5c1d587b2dd4d7a22c179c09a649366760",
    },
  },
  kubeVipImage: "ghcr.io/kube-vip/kube-vip:v1.0.1",
  // No sha256 yet: these were chosen where the release files could not be downloaded, and a checksum nobody
  // verified is worse than none. `nodeforge cni-pin STACK` prints the line to add once it has been checked.
  cni: {
    flannel: {
      version: "v0.27.3",
      manifestUrl: "https://github.com/flannel-io/flannel/releases/download/v0.27.3/kube-flannel.yml",
    },
    calico: {
      version: "v3.30.3",
      manifestUrl: "https://raw.githubusercontent.com/projectcalico/calico/v3.30.3/manifests/calico.yaml",
    },
  },
};

/** The Kubernetes versions nodeforge can install, newest last. */
export function supportedKubernetesVersions(pins: Pins = DEFAULT_PINS): string[] {
  return Object.keys(pins.kubernetes);
}

export const DEFAULT_KUBERNETES_BASE_URL = "https://dl.k8s.io/release";
export const DEFAULT_CRICTL_BASE_URL = "https://github.com/kubernetes-sigs/cri-tools/releases/download";
export const DEFAULT_CNI_PLUGINS_BASE_URL = "https://github.com/containernetworking/plugins/releases/download";
export const DEFAULT_ETCD_BASE_URL = "https://github.com/etcd-io/etcd/releases/download";
export const DEFAULT_CONTAINERD_BASE_URL = "https://github.com/containerd/containerd/releases/download";
export const DEFAULT_RUNC_BASE_URL = "https://github.com/opencontainers/runc/releases/download";
