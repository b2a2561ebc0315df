/**
 * The images a kubeadm control plane runs, assembled from the lab's own builds as upstream's images lay them out
 * (the binary in /usr/local/bin, on PATH; CoreDNS's at /coredns, its entrypoint), under the names kubeadm asks
 * registry.k8s.io for: kube-apiserver, kube-controller-manager and kube-scheduler of the Kubernetes build, the etcd
 * kubeadm deploys, CoreDNS, the pause image, and flannel's two images under the ghcr.io names its manifest pulls.
 * kube-proxy and flanneld program the kernel with iptables or nft, so their images are, like upstream's
 * distroless-iptables one, a Debian userland with those tools: the lab's Debian rootfs with Debian's iptables,
 * nftables and conntrack packages installed. Cached under CACHE_ROOT/image/.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import type { Arch } from "../../modules/stack/types";
import type { ImageRegistry } from "./image-registry";
import { builtBinary, componentDir, ensurePauseImage, KUBERNETES_BUILD_VERSION } from "./kubernetes-build";
import { writeOciImage } from "./oci-image";
import { downloadWithDependencies } from "./apt-mirror";
import { buildCached, CACHE_ROOT, ensureRootfs, execChecked, removeTree, sha256Hex } from "./rootfs";

/** An image by its registry (registry.k8s.io, ghcr.io), its path there (`coredns/coredns`) and tag. */
export interface ClusterImage {
  registry: string;
  repository: string;
  tag: string;
  /** The OCI image-layout tarball on the host. */
  path: string;
}

interface ImageRecipe {
  /** Default registry.k8s.io. */
  registry?: string;
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

/** An image's cache directory: named by the image, keyed by what goes into it (a rebuilt binary is a new image). */
function imageDir(recipe: ImageRecipe, arch: Arch, base = ""): string {
  const inputs = Object.entries(recipe.files).map(([from, to]) => {
    const stat = statSync(from);
    return [from, to, stat.size, stat.mtimeMs];
  });
  const key = sha256Hex(JSON.stringify({ inputs, entrypoint: recipe.entrypoint, base })).slice(0, 12);
  return join(CACHE_ROOT, "image", `${recipe.repository.replace("/", "_")}-${recipe.tag}-${arch}-${key}`);
}

/** What kube-proxy and flanneld run (iptables and nft modes, conntrack cleanup), as upstream's base images have. */
const NETFILTER_PACKAGES = ["iptables", "nftables", "conntrack"];

/**
 * An image on a Debian userland: the lab's rootfs with the netfilter tools installed in a chroot, and `recipe`'s
 * files (kube-proxy and flannel programs the kernel with them; flannel's init containers also run `cp`).
 */
async function ensureUserlandImage(recipe: ImageRecipe, arch: Arch): Promise<ClusterImage> {
  const rootfs = await ensureRootfs();
  const dir = imageDir(recipe, arch, rootfs.key);
  await buildCached(dir, async (temp) => {
    mkdirSync(temp);
    const stage = join(temp, "stage");
    await execChecked("cp", ["-a", "--reflink=auto", rootfs.path, stage]);
    const debs = join(stage, "var", "tmp", "debs");
    mkdirSync(debs, { recursive: true });
    await downloadWithDependencies(rootfs, NETFILTER_PACKAGES, debs);
    const files = readdirSync(debs).filter((file) => file.endsWith(".deb"));
    await execChecked("chroot", [stage, "dpkg", "-i", ...files.map((file) => `/var/tmp/debs/${file}`)]);
    await removeTree(debs);
    for (const [from, to] of Object.entries(recipe.files)) {
      mkdirSync(join(stage, to, ".."), { recursive: true });
      copyFileSync(from, join(stage, to));
    }
    await writeOciImage(
      {
        stage,
        // The machine's /dev, /proc and /sys stay out: the runtime mounts its own.
        entries: readdirSync(stage).filter((entry) => !["dev", "proc", "sys"].includes(entry)),
        ref: `${recipe.registry ?? "registry.k8s.io"}/${recipe.repository}:${recipe.tag}`,
        arch,
        config: { Env: [PATH_ENV], ...(recipe.entrypoint ? { Entrypoint: recipe.entrypoint } : {}) },
      },
      join(temp, "image.tar"),
    );
    await removeTree(stage);
  });
  return {
    registry: recipe.registry ?? "registry.k8s.io",
    repository: recipe.repository,
    tag: recipe.tag,
    path: join(dir, "image.tar"),
  };
}

/** The images on a Debian userland: kube-proxy, and flannel's two (the daemon, the CNI plugin's installer). */
function userlandRecipes(arch: Arch): ImageRecipe[] {
  const kubeProxy = builtBinary(KUBERNETES_BUILD_VERSION, arch, "kube-proxy");
  if (!kubeProxy)
    throw new Error(`no kube-proxy v${KUBERNETES_BUILD_VERSION} built: run \`bash .ci/install-kubernetes\``);
  const flannel = componentDir("flannel");
  const flannelCni = componentDir("flannel-cni");
  const manifestTag = (image: string): string => flannelManifestImageTag(join(flannel, "kube-flannel.yml"), image);
  return [
    {
      repository: "kube-proxy",
      tag: `v${KUBERNETES_BUILD_VERSION}`,
      files: { [kubeProxy]: "usr/local/bin/kube-proxy" },
    },
    {
      registry: "ghcr.io",
      repository: "flannel-io/flannel",
      tag: manifestTag("flannel-io/flannel"),
      files: {
        [join(flannel, "flanneld")]: "opt/bin/flanneld",
        [join(flannel, "install-conf")]: "opt/bin/install-conf",
      },
      entrypoint: ["/opt/bin/flanneld"],
    },
    {
      registry: "ghcr.io",
      repository: "flannel-io/flannel-cni-plugin",
      tag: manifestTag("flannel-io/flannel-cni-plugin"),
      files: { [join(flannelCni, "flannel")]: "flannel" },
    },
  ];
}

/** The tag flannel's manifest gives `ghcr.io/<image>`: the lab's images carry the names the manifest pulls. */
export function flannelManifestImageTag(manifest: string, image: string): string {
  const match = new RegExp(`image: ghcr\\.io/${image.replace("/", "\\/")}:(\\S+)`).exec(readFileSync(manifest, "utf8"));
  if (!match?.[1]) throw new Error(`${manifest}: no image ghcr.io/${image}`);
  return match[1];
}

async function ensureImage(recipe: ImageRecipe, arch: Arch): Promise<ClusterImage> {
  const dir = imageDir(recipe, arch);
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
  return { registry: "registry.k8s.io", repository: recipe.repository, tag: recipe.tag, path: join(dir, "image.tar") };
}

/** Every image of a kubeadm control plane, built once. */
export async function ensureClusterImages(arch: Arch): Promise<ClusterImage[]> {
  const pause = await ensurePauseImage(arch);
  const images: ClusterImage[] = [
    {
      registry: "registry.k8s.io",
      repository: "pause",
      tag: pause.ref.slice(pause.ref.lastIndexOf(":") + 1),
      path: pause.path,
    },
  ];
  for (const recipe of recipes(arch)) images.push(await ensureImage(recipe, arch));
  for (const recipe of userlandRecipes(arch)) images.push(await ensureUserlandImage(recipe, arch));
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
