/**
 * The images a kubeadm control plane runs, assembled from the lab's own builds as upstream's images lay them out
 * (the binary in /usr/local/bin, on PATH; CoreDNS's at /coredns, its entrypoint), under the names kubeadm asks
 * registry.k8s.io for: kube-apiserver, kube-controller-manager and kube-scheduler of the Kubernetes build, the etcd
 * kubeadm deploys, CoreDNS, and the pause image. kube-proxy programs the kernel with iptables or nft, so its image
 * is, like upstream's distroless-iptables one, a Debian userland with those tools: the lab's Debian rootfs with
 * Debian's iptables, nftables and conntrack packages installed. Cached under CACHE_ROOT/image/.
 */
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import { basename, join } from "node:path";
import type { Arch } from "../../modules/stack/types";
import { componentDir, type ImageRegistry } from "./image-registry";
import { builtBinary, ensurePauseImage, KUBERNETES_BUILD_VERSION } from "./kubernetes-build";
import { writeOciImage } from "./oci-image";
import { downloadWithDependencies } from "./apt-mirror";
import { buildCached, CACHE_ROOT, ensureRootfs, execChecked, removeTree } from "./rootfs";

/** An image by its path below registry.k8s.io (`kube-apiserver`, `coredns/coredns`) and tag. */
export interface ClusterImage {
  repository: string;
  tag: string;
  /** The OCI image-layout tarball on the host. */
  path: string;
}

interface ImageRecipe {
  repository: string;
  tag: string;
  /** Files copied into the image: host path -> path inside it. */
  files: Record<string, string>;
  entrypoint?: string[];
}

const PATH_ENV = "PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

function recipes(arch: Arch): ImageRecipe[] {
  const kube = (name: "kube-apiserver" | "kube-controller-manager" | "kube-scheduler"): ImageRecipe => {
    const binary = builtBinary(KUBERNETES_BUILD_VERSION, arch, name);
    if (!binary) throw new Error(`no ${name} v${KUBERNETES_BUILD_VERSION} built: run \`bash .ci/install-kubernetes\``);
    return { repository: name, tag: `v${KUBERNETES_BUILD_VERSION}`, files: { [binary]: `usr/local/bin/${name}` } };
  };
  const etcd = componentDir("etcd");
  const coredns = componentDir("coredns");
  return [
    kube("kube-apiserver"),
    kube("kube-controller-manager"),
    kube("kube-scheduler"),
    {
      // kubeadm's etcd image tag: the etcd version and the image's own revision (-0).
      repository: "etcd",
      tag: `${basename(etcd).slice(1)}-0`,
      files: { [join(etcd, "etcd")]: "usr/local/bin/etcd", [join(etcd, "etcdctl")]: "usr/local/bin/etcdctl" },
    },
    {
      repository: "coredns/coredns",
      tag: basename(coredns),
      files: { [join(coredns, "coredns")]: "coredns" },
      entrypoint: ["/coredns"],
    },
  ];
}

/** The packages kube-proxy runs (iptables and nft modes, conntrack cleanup), as upstream's base image has them. */
const KUBE_PROXY_PACKAGES = ["iptables", "nftables", "conntrack"];

/** kube-proxy on a Debian userland: the rootfs, the packages installed in a chroot, the binary on PATH. */
async function ensureKubeProxyImage(arch: Arch): Promise<ClusterImage> {
  const binary = builtBinary(KUBERNETES_BUILD_VERSION, arch, "kube-proxy");
  if (!binary) throw new Error(`no kube-proxy v${KUBERNETES_BUILD_VERSION} built: run \`bash .ci/install-kubernetes\``);
  const rootfs = await ensureRootfs();
  const tag = `v${KUBERNETES_BUILD_VERSION}`;
  const dir = join(CACHE_ROOT, "image", `kube-proxy-${tag}-${arch}-${rootfs.key.slice(0, 12)}`);
  await buildCached(dir, async (temp) => {
    mkdirSync(temp);
    const stage = join(temp, "stage");
    await execChecked("cp", ["-a", "--reflink=auto", rootfs.path, stage]);
    const debs = join(stage, "var", "tmp", "debs");
    mkdirSync(debs, { recursive: true });
    await downloadWithDependencies(rootfs, KUBE_PROXY_PACKAGES, debs);
    const files = readdirSync(debs).filter((name) => name.endsWith(".deb"));
    await execChecked("chroot", [stage, "dpkg", "-i", ...files.map((name) => `/var/tmp/debs/${name}`)]);
    await removeTree(debs);
    copyFileSync(binary, join(stage, "usr", "local", "bin", "kube-proxy"));
    await writeOciImage(
      {
        stage,
        // The machine's /dev, /proc and /sys stay out: the runtime mounts its own.
        entries: readdirSync(stage).filter((entry) => !["dev", "proc", "sys"].includes(entry)),
        ref: `registry.k8s.io/kube-proxy:${tag}`,
        arch,
        config: { Env: [PATH_ENV] },
      },
      join(temp, "image.tar"),
    );
    await removeTree(stage);
  });
  return { repository: "kube-proxy", tag, path: join(dir, "image.tar") };
}

async function ensureImage(recipe: ImageRecipe, arch: Arch): Promise<ClusterImage> {
  const dir = join(CACHE_ROOT, "image", `${recipe.repository.replace("/", "_")}-${recipe.tag}-${arch}`);
  await buildCached(dir, async (temp) => {
    mkdirSync(temp);
    const stage = join(temp, "stage");
    for (const [from, to] of Object.entries(recipe.files)) {
      mkdirSync(join(stage, to, ".."), { recursive: true });
      copyFileSync(from, join(stage, to));
    }
    const entries = [...new Set(Object.values(recipe.files).map((to) => to.split("/")[0] as string))];
    await writeOciImage(
      {
        stage,
        entries,
        ref: `registry.k8s.io/${recipe.repository}:${recipe.tag}`,
        arch,
        config: { Env: [PATH_ENV], ...(recipe.entrypoint ? { Entrypoint: recipe.entrypoint } : {}) },
      },
      join(temp, "image.tar"),
    );
    await removeTree(stage);
  });
  return { repository: recipe.repository, tag: recipe.tag, path: join(dir, "image.tar") };
}

/** Every image of a kubeadm control plane, built once. */
export async function ensureClusterImages(arch: Arch): Promise<ClusterImage[]> {
  const pause = await ensurePauseImage(arch);
  const images = [{ repository: "pause", tag: pause.ref.slice(pause.ref.lastIndexOf(":") + 1), path: pause.path }];
  for (const recipe of recipes(arch)) images.push(await ensureImage(recipe, arch));
  images.push(await ensureKubeProxyImage(arch));
  return images;
}

/** Pushes the control plane's images into the lab's registry; returns `repository:tag` of each. */
export async function pushClusterImages(registry: ImageRegistry, arch: Arch): Promise<string[]> {
  const pushed: string[] = [];
  for (const image of await ensureClusterImages(arch)) {
    await registry.push(image.path, image.repository, image.tag);
    pushed.push(`${image.repository}:${image.tag}`);
  }
  return pushed;
}
