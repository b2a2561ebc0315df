/**
 * The images a kubeadm control plane runs, assembled from the lab's own builds as upstream's images lay them out
 * (the binary in /usr/local/bin, on PATH; CoreDNS's at /coredns, its entrypoint), under the names kubeadm asks
 * registry.k8s.io for: kube-apiserver, kube-controller-manager and kube-scheduler of the Kubernetes build, the etcd
 * kubeadm deploys, CoreDNS, the pause image, and flannel's two images under the ghcr.io names its manifest pulls.
 * kube-proxy and flanneld program the kernel with iptables or nft, so their images are, like upstream's
 * distroless-iptables one, a Debian userland with those tools: the lab's Debian rootfs with Debian's iptables,
 * nftables and conntrack packages installed. flannel's CNI plugin image only has its plugin copied out by `cp`:
 * busybox's, as upstream's Alpine one has (a Debian userland there was 188 MB more for every node to pull, minutes
 * in a TCG VM). Cached under CACHE_ROOT/image/.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import type { Arch } from "../../modules/stack/types";
import type { ImageRegistry } from "./image-registry";
import { builtBinary, componentDir, ensurePauseImage, KUBERNETES_BUILD_VERSION } from "./kubernetes-build";
import { writeLayerTar, writeOciImage } from "./oci-image";
import { downloadWithDependencies } from "./apt-mirror";
import { buildCached, CACHE_ROOT, ensureRootfs, execChecked, removeTree, sha256Hex } from "./rootfs";
import { ensureBusybox } from "./tiny-image";

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

type ComponentName = "kube-apiserver" | "kube-controller-manager" | "kube-scheduler" | "kube-proxy";

/** The image of a Kubernetes component at `version`: its binary from that version's build. */
function componentRecipe(name: ComponentName, version: string, arch: Arch): ImageRecipe {
  const binary = builtBinary(version, arch, name);
  if (!binary) throw new Error(`no ${name} v${version} built: run \`bash .ci/install-kubernetes\``);
  return { repository: name, tag: `v${version}`, files: { [binary]: `usr/local/bin/${name}` } };
}

/** The control plane's images of each Kubernetes version, and the etcd and CoreDNS the lab's kubeadm deploys. */
function recipes(arch: Arch, versions: readonly string[]): ImageRecipe[] {
  const etcd = componentDir("etcd");
  const coredns = componentDir("coredns");
  return [
    ...versions.flatMap((version) =>
      (["kube-apiserver", "kube-controller-manager", "kube-scheduler"] as const).map((name) =>
        componentRecipe(name, version, arch),
      ),
    ),
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
 * The layer every userland image starts from: the lab's rootfs with the netfilter tools installed in a chroot
 * (kube-proxy and flannel program the kernel with them; flannel's init containers also run `cp`), built once, so
 * kube-proxy's and flannel's images share it and a node pulls it once.
 */
async function ensureUserlandLayer(): Promise<{ path: string; key: string }> {
  const rootfs = await ensureRootfs();
  const dir = join(CACHE_ROOT, "image", `netfilter-userland-${rootfs.key}`);
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
    // The machine's /dev, /proc and /sys stay out: the runtime mounts its own.
    const entries = readdirSync(stage).filter((entry) => !["dev", "proc", "sys"].includes(entry));
    await writeLayerTar(stage, entries, join(temp, "layer.tar"));
    await removeTree(stage);
  });
  return { path: join(dir, "layer.tar"), key: rootfs.key };
}

/** The images on a Debian userland: kube-proxy of each version, and flannel's daemon. */
function userlandRecipes(arch: Arch, versions: readonly string[]): ImageRecipe[] {
  const flannel = componentDir("flannel");
  const manifestTag = (image: string): string => flannelManifestImageTag(join(flannel, "kube-flannel.yml"), image);
  return [
    ...versions.map((version) => componentRecipe("kube-proxy", version, arch)),
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
  ];
}

/** flannel's CNI plugin image: the plugin, and busybox as `cp` (busybox runs the applet its file is named). */
function flannelCniRecipe(busybox: string): ImageRecipe {
  const manifest = join(componentDir("flannel"), "kube-flannel.yml");
  return {
    registry: "ghcr.io",
    repository: "flannel-io/flannel-cni-plugin",
    tag: flannelManifestImageTag(manifest, "flannel-io/flannel-cni-plugin"),
    files: { [join(componentDir("flannel-cni"), "flannel")]: "flannel", [busybox]: "bin/cp" },
  };
}

/** The tag flannel's manifest gives `ghcr.io/<image>`: the lab's images carry the names the manifest pulls. */
export function flannelManifestImageTag(manifest: string, image: string): string {
  const match = new RegExp(`image: ghcr\\.io/${image.replace("/", "\\/")}:(\\S+)`).exec(readFileSync(manifest, "utf8"));
  if (!match?.[1]) throw new Error(`${manifest}: no image ghcr.io/${image}`);
  return match[1];
}

/** An image of `recipe`'s files (on `base`'s layer when given), built once. */
async function ensureImage(
  recipe: ImageRecipe,
  arch: Arch,
  base?: { path: string; key: string },
): Promise<ClusterImage> {
  const dir = imageDir(recipe, arch, base ? `${base.key}:${base.path}` : "");
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
        ref: `${recipe.registry ?? "registry.k8s.io"}/${recipe.repository}:${recipe.tag}`,
        arch,
        baseLayer: base?.path,
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

/**
 * Every image a kubeadm control plane of each of `versions` runs (default the lab's build), built once: what each
 * version's own kubeadm lists (`kubeadm config images list`). The lab builds one etcd and one CoreDNS, those the
 * lab's kubeadm deploys; an older kubeadm asks for older tags of them (1.35.8: etcd 3.6.6-0, CoreDNS v1.13.1), which
 * the registry serves as the same images under those tags too (kubeadm's upgrade then restarts etcd and CoreDNS on
 * the same programs): building each release of them would add minutes to every cold run for no other check.
 */
export async function ensureClusterImages(
  arch: Arch,
  versions: readonly string[] = [KUBERNETES_BUILD_VERSION],
): Promise<ClusterImage[]> {
  const images: ClusterImage[] = [];
  for (const version of versions) {
    const pause = await ensurePauseImage(arch, version);
    const tag = pause.ref.slice(pause.ref.lastIndexOf(":") + 1);
    if (!images.some((image) => image.repository === "pause" && image.tag === tag)) {
      images.push({ registry: "registry.k8s.io", repository: "pause", tag, path: pause.path });
    }
  }
  const busybox = await ensureBusybox(await ensureRootfs());
  for (const recipe of [...recipes(arch, versions), flannelCniRecipe(busybox)]) {
    images.push(await ensureImage(recipe, arch));
  }
  // kube-proxy's and flannel's images share the netfilter userland as their first layer.
  const userland = await ensureUserlandLayer();
  for (const recipe of userlandRecipes(arch, versions)) images.push(await ensureImage(recipe, arch, userland));
  for (const version of versions) {
    for (const wanted of await kubeadmImages(version, arch)) {
      if (images.some((image) => image.repository === wanted.repository && image.tag === wanted.tag)) continue;
      const same = images.find((image) => image.repository === wanted.repository);
      if (!same || !["etcd", "coredns/coredns"].includes(wanted.repository)) {
        throw new Error(`kubeadm v${version} runs registry.k8s.io/${wanted.repository}:${wanted.tag}: no such image`);
      }
      images.push({ ...same, tag: wanted.tag });
    }
  }
  return images;
}

/** The registry.k8s.io images (`repository`, `tag`) kubeadm of `version` runs, as its build lists them. */
async function kubeadmImages(version: string, arch: Arch): Promise<{ repository: string; tag: string }[]> {
  const kubeadm = builtBinary(version, arch, "kubeadm");
  if (!kubeadm) throw new Error(`no kubeadm v${version} built: run \`bash .ci/install-kubernetes\``);
  const listed = await execChecked(kubeadm, ["config", "images", "list", "--kubernetes-version", `v${version}`]);
  return listed
    .trim()
    .split("\n")
    .map((ref) => {
      const match = /^registry\.k8s\.io\/(.+):([^:]+)$/.exec(ref.trim());
      if (!match) throw new Error(`kubeadm v${version} config images list: unexpected image ${ref}`);
      return { repository: match[1]!, tag: match[2]! };
    });
}

/** Pushes the control planes' images of `versions` into the lab's registry; returns `repository:tag` of each. */
export async function pushClusterImages(
  registry: ImageRegistry,
  arch: Arch,
  versions?: readonly string[],
): Promise<string[]> {
  const pushed: string[] = [];
  for (const image of await ensureClusterImages(arch, versions)) {
    await registry.push(image.path, image.repository, image.tag);
    pushed.push(`${image.repository}:${image.tag}`);
  }
  return pushed;
}
