/**
 * Kubernetes as .ci/install-kubernetes builds it from its Go module (real binaries, not test doubles): where the
 * build is, for which version, and the pause (sandbox) image assembled from its pause binary, the one the pinned
 * `pauseImage` names, for `ctr image import` into containerd's k8s.io namespace.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { DEFAULT_PINS, type KubeBinary } from "../../modules/pins";
import { projectRoot } from "../../modules/project-root";
import type { Arch } from "../../modules/stack/types";
import { writeOciImage } from "./oci-image";
import { buildCached, CACHE_ROOT, execChecked, removeTree } from "./rootfs";

/** The Kubernetes version .ci/kubernetes/go.mod builds. */
export const KUBERNETES_BUILD_VERSION = "1.36.3";

/** The minor before it, which .ci/kubernetes-previous/go.mod builds: where the upgrade test's cluster starts. */
export const KUBERNETES_PREVIOUS_VERSION = "1.35.8";

/**
 * Builds the previous minor (Kubernetes and the containerd its pins name) unless it is built; .ci/run starts that
 * build in the background while the other suites run, and this waits for it under the script's lock.
 */
export async function ensurePreviousKubernetes(log: (line: string) => void): Promise<void> {
  const started = Date.now();
  await execChecked("bash", [join(projectRoot(), ".ci", "install-previous-kubernetes")]);
  log(`Kubernetes ${KUBERNETES_PREVIOUS_VERSION} built: ${((Date.now() - started) / 1000).toFixed(1)} s waited`);
}

function buildRoot(version: string): string {
  return join(CACHE_ROOT, "kubernetes", `v${version}`);
}

/**
 * The builds the artifact mirror serves in place of its doubles. A real kubeadm init needs the control-plane
 * images in the lab's registry: a lab without one keeps the kubeadm and kubectl doubles.
 */
export function servedBuilds(withRegistry: boolean): readonly KubeBinary[] {
  return withRegistry ? ["kubelet", "kubeadm", "kubectl"] : ["kubelet"];
}

/** What .ci/install-kubernetes builds besides the pause binary. */
export type BuiltBinary = KubeBinary | "kube-apiserver" | "kube-controller-manager" | "kube-scheduler" | "kube-proxy";

/** The path of a binary .ci/install-kubernetes built, if it did. */
export function builtBinary(version: string, arch: Arch, binary: BuiltBinary): string | undefined {
  const path = join(buildRoot(version), "bin", "linux", arch, binary);
  return existsSync(path) ? path : undefined;
}

/** The CNI plugins release tarball .ci/install-cni-plugins built, if it did. */
export function builtCniPlugins(version: string, arch: Arch): string | undefined {
  const path = join(CACHE_ROOT, "cni-plugins", `v${version}`, `cni-plugins-linux-${arch}-v${version}.tgz`);
  return existsSync(path) ? path : undefined;
}

/** The etcd release tarball .ci/install-cluster-components built, if it did. */
export function builtEtcdRelease(version: string, arch: Arch): string | undefined {
  return builtReleaseFile("etcd", version, `etcd-v${version}-linux-${arch}.tar.gz`);
}

/** A release file .ci/install-cluster-components built for component `name` at `version`, if it did. */
function builtReleaseFile(name: string, version: string, file: string): string | undefined {
  const path = join(CACHE_ROOT, "components", name, `v${version}`, file);
  return existsSync(path) ? path : undefined;
}

/** The containerd release tarball (containerd-<v>-linux-<arch>.tar.gz) .ci/install-cluster-components built, if it did. */
export function builtContainerdRelease(version: string, arch: Arch): string | undefined {
  return builtReleaseFile("containerd", version, `containerd-${version}-linux-${arch}.tar.gz`);
}

/** The runc release file (runc.<arch>) .ci/install-cluster-components built, if it did. */
export function builtRunc(version: string, arch: Arch): string | undefined {
  return builtReleaseFile("runc", version, `runc.${arch}`);
}

/** The crictl release tarball (crictl-v<v>-linux-<arch>.tar.gz) .ci/install-cluster-components built, if it did. */
export function builtCrictl(version: string, arch: Arch): string | undefined {
  return builtReleaseFile("cri-tools", version, `crictl-v${version}-linux-${arch}.tar.gz`);
}

/** The build of a component .ci/install-cluster-components made (CACHE_ROOT/components/<name>/v<version>), if any. */
export function builtComponent(name: string): string | undefined {
  const parent = join(CACHE_ROOT, "components", name);
  const versions = existsSync(parent) ? readdirSync(parent).filter((v) => /^v\d/.test(v)) : [];
  if (versions.length > 1) throw new Error(`more than one ${name} build in ${parent}: ${versions.join(", ")}`);
  return versions[0] && join(parent, versions[0]);
}

/** The component's build directory; a clear error when .ci/install-cluster-components has not built it. */
export function componentDir(name: string): string {
  return (
    builtComponent(name) ??
    (() => {
      throw new Error(`no ${name} build: run \`bash .ci/install-cluster-components\` first`);
    })()
  );
}

/** flannel as .ci/install-cluster-components built it: its version and its release manifest, if it did. */
export function builtFlannel(): { version: string; manifest: string } | undefined {
  const dir = builtComponent("flannel");
  const manifest = dir && join(dir, "kube-flannel.yml");
  return dir && manifest && existsSync(manifest) ? { version: basename(dir), manifest } : undefined;
}

/** The build's kubelet; a clear error when .ci/install-kubernetes has not run. */
export function requireBuiltKubelet(arch: Arch): string {
  return (
    builtBinary(KUBERNETES_BUILD_VERSION, arch, "kubelet") ??
    (() => {
      throw new Error(`no kubelet v${KUBERNETES_BUILD_VERSION} built: run \`bash .ci/install-kubernetes\` first`);
    })()
  );
}

export interface PauseImage {
  /** The OCI image tarball on the host. */
  path: string;
  /** registry.k8s.io/pause:<version>: the pinned sandbox image of the build's Kubernetes version. */
  ref: string;
}

/**
 * The pause image of a Kubernetes build (default the lab's), cached under CACHE_ROOT/image/; its ref is the one
 * containerd is configured with.
 */
export async function ensurePauseImage(arch: Arch, kubernetesVersion = KUBERNETES_BUILD_VERSION): Promise<PauseImage> {
  const root = buildRoot(kubernetesVersion);
  const version = readFileSync(join(root, "pause", "VERSION"), "utf8").trim();
  const ref = `registry.k8s.io/pause:${version}`;
  const pinned = DEFAULT_PINS.kubernetes[kubernetesVersion]?.pauseImage;
  if (pinned !== ref) throw new Error(`pause: the build made ${ref}, the pins name ${String(pinned)}`);
  const dir = join(CACHE_ROOT, "image", `pause-${version}-${arch}`);
  await buildCached(dir, async (temp) => {
    mkdirSync(temp);
    const stage = join(temp, "stage");
    mkdirSync(stage);
    copyFileSync(join(root, "pause", "linux", arch, "pause"), join(stage, "pause"));
    await writeOciImage(
      { stage, entries: ["pause"], ref, arch, config: { Entrypoint: ["/pause"] } },
      join(temp, "image.tar"),
    );
    await removeTree(stage);
  });
  return { path: join(dir, "image.tar"), ref };
}
