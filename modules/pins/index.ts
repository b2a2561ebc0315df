/**
 * Every version pin and artifact checksum nodeforge uses, in one place.
 *
 * Checksums are the sha256 of the release files as published for the upstream releases (Kubernetes
 * binaries from the `bin/linux/<arch>/` tree, crictl release tarballs). A mirror must serve the same bytes.
 */
import type { Arch } from "../stack/types";

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
  /** Sandbox (pause) image this release's kubeadm expects; containerd and kubelet must agree on it. */
  pauseImage: string;
  binaries: Record<Arch, Record<KubeBinary, string>>;
}

export interface Pins {
  kubernetes: Record<string, KubernetesRelease>;
  crictl: Record<string, Record<Arch, string>>;
  /** kube-vip image (control-plane VIP static pod, controlPlaneLoadBalancer.type kube-vip), pinned by tag. */
  kubeVipImage: string;
  cni: Record<CniPlugin, CniRelease>;
}

export const DEFAULT_PINS: Pins = {
  kubernetes: {
    "1.33.8": {
      crictlVersion: "1.33.0",
      pauseImage: "registry.k8s.io/pause:3.10",
      binaries: {
        amd64: {
          kubelet: "1caa69c5328cfa774218f75f0621a6f10a1b97e095af85015f468aeb8fdf956a",
          kubeadm: "8259af514dc3655e8abec1a69b637f31cce2ecb940a80ae4a268e5287890f009",
          kubectl: "7f9c3faab7c9f9cc3f318d49eb88efc60eb3b3a7ce9eee5feb39b1280e108a29",
        },
        arm64: {
          kubelet: "e835f15be6d8b7b27b963a46c4a054f7663c26741f17e003bfcb8271350cf882",
          kubeadm: "b5248b51e66e4716261f2c926fe2f08a293795e6863099e7792b4d57dbb9109e",
          kubectl: "76e284669f1f6343bd9fe2a011757809c8c01cf51da9f85ee6ef4eb93c8393a8",
        },
      },
    },
    "1.34.4": {
      crictlVersion: "1.34.0",
      pauseImage: "registry.k8s.io/pause:3.10.1",
      binaries: {
        amd64: {
          kubelet: "03b8fea715a7ef82eeaf518dee34c72670c57cc7bc40dc1320c04fbf4f15172f",
          kubeadm: "b967f1fa0e36621c402d38bb560eb4a943954d5cf5a00e5150842f6f5da73455",
          kubectl: "d50c359d95e0841eaad08ddc27c7be37cba8fdccfba5c8e2ded65e121ff112db",
        },
        arm64: {
          kubelet: "c78845473c434ee85a2444eeab87f8b20f524e3ab6854a078f79468f44aad8f5",
          kubeadm: "d8028b7e8c8d6c9b3fc3da6bc88d4d0cfb33df1b4b026a7d6e8c35d1471c9f6e",
          kubectl: "5b982c0644ab1e27780246b9085a5886651b4a7ed86243acbb2bacc1bea01dda",
        },
      },
    },
    "1.35.1": {
      crictlVersion: "1.35.0",
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
  },
  crictl: {
    "1.33.0": {
      amd64: "8307399e714626e69d1213a4cd18c8dec3d0201ecdac009b1802115df8973f0f",
      arm64: "e1f34918d77d5b4be85d48f5d713ca617698a371b049ea1486000a5e86ab1ff3",
    },
    "1.34.0": {
      amd64: "a8ff2a3edb37a98daf3aba7c3b284fe0aa5bff24166d896ab9ef64c8913c9f51",
      arm64: "c31d252e203df5f4cf37f314bd3092eb79087e791631c1e607087c74b6d0423f",
    },
    "1.35.0": {
      amd64: "2e141e5b22cb189c40365a11807d69b76b9b3caced89fac2f4ec879408ce2177",
      arm64: "519071de89b64c43e2a1661bb5489c6c3fd5e9e5fcef75e50e542b0c891f1118",
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
export const DEFAULT_RHEL_CONTAINERD_REPO_URL = "https://download.docker.com/linux/rhel/$releasever/$basearch/stable";
export const DEFAULT_RHEL_CONTAINERD_REPO_GPG_KEY = "https://download.docker.com/linux/rhel/gpg";
