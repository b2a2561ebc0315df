import { dirname } from "node:path";
import { ARCHES } from "../stack";
import { render } from "../render";
import type { KubeBinary } from "../pins";
import { BIN_DIR, CNI_BIN_DIR, KUBELET_KUBECONFIG, STATE_DIR } from "./constants";
import type { Step, StepContext } from "./types";
import { scriptValues } from "./values";

const BINARIES: KubeBinary[] = ["kubelet", "kubeadm", "kubectl"];

/** The names of the CNI plugins nodeforge installed, one per line: destroy removes exactly these. */
const CNI_PLUGINS_LIST = `${STATE_DIR}/cni-plugins.installed`;

export interface Artifact {
  name: string;
  url: string;
  sha256: string;
  dest: string;
}

/**
 * Where install-kubelet leaves a new kubelet, verified, on a node that has joined: only its kubernetes-upgrade step
 * swaps it in, once the control plane runs the new version and the node is drained.
 */
export const STAGED_KUBELET = `${BIN_DIR}/kubelet.nodeforge-upgrade`;

/** The kubelet artifact among kubernetesArtifacts, with where a joined node stages it; the others stage nothing. */
function withStaging(artifact: Artifact): Artifact & { staged: string | false } {
  return { ...artifact, staged: artifact.name === "kubelet" && STAGED_KUBELET };
}

/** The release binaries for this machine's version and architecture, with their pinned checksums. */
export function kubernetesArtifacts(ctx: StepContext): Artifact[] {
  const { kubernetesVersion } = ctx.stack.cluster;
  const arch = ctx.machine.arch;
  if (!ARCHES.includes(arch)) throw new Error(`${ctx.machine.name}: unsupported arch ${arch}`);
  return BINARIES.map((name) => ({
    name,
    url: `${ctx.stack.artifacts.kubernetesBaseUrl}/v${kubernetesVersion}/bin/linux/${arch}/${name}`,
    sha256: ctx.release.binaries[arch][name],
    dest: `${BIN_DIR}/${name}`,
  }));
}

export function crictlArtifact(ctx: StepContext): Artifact {
  const version = ctx.release.crictlVersion;
  const arch = ctx.machine.arch;
  const sha256 = ctx.pins.crictl[version]?.[arch];
  if (!sha256) throw new Error(`${ctx.machine.name}: no pinned checksum for crictl ${version} ${arch}`);
  return {
    name: "crictl",
    url: `${ctx.stack.artifacts.crictlBaseUrl}/v${version}/crictl-v${version}-linux-${arch}.tar.gz`,
    sha256,
    dest: `${BIN_DIR}/crictl`,
  };
}

/** The CNI reference plugins release tarball; its binaries go to CNI_BIN_DIR. */
export function cniPluginsArtifact(ctx: StepContext): Artifact {
  const version = ctx.release.cniPluginsVersion;
  const arch = ctx.machine.arch;
  const sha256 = ctx.pins.cniPlugins[version]?.[arch];
  if (!sha256) throw new Error(`${ctx.machine.name}: no pinned checksum for CNI plugins ${version} ${arch}`);
  return {
    name: "cni-plugins",
    url: `${ctx.stack.artifacts.cniPluginsBaseUrl}/v${version}/cni-plugins-linux-${arch}-v${version}.tgz`,
    sha256,
    dest: CNI_BIN_DIR,
  };
}

export const installKubelet: Step = {
  name: "install-kubelet",
  title:
    "Download kubelet, kubeadm, kubectl, crictl and the CNI reference plugins, verified against pinned sha256 checksums",
  waitsForControlPlane: false,
  appliesTo: () => true,
  files: () => [],
  script: (ctx) => {
    const crictl = crictlArtifact(ctx);
    const cni = cniPluginsArtifact(ctx);
    return render("scripts/install-kubelet.sh.hbs", {
      ...scriptValues(ctx.machine.name, ctx.os, "install-kubelet"),
      binDir: BIN_DIR,
      binaries: kubernetesArtifacts(ctx).map(withStaging),
      kubeletConf: KUBELET_KUBECONFIG,
      crictlUrl: crictl.url,
      crictlSha256: crictl.sha256,
      crictlDest: crictl.dest,
      crictlTarball: `${STATE_DIR}/crictl.tar.gz`,
      crictlUnpackDir: `${STATE_DIR}/crictl-unpack`,
      cniUrl: cni.url,
      cniSha256: cni.sha256,
      cniBinDir: cni.dest,
      cniTarball: `${STATE_DIR}/cni-plugins.tgz`,
      cniUnpackDir: `${STATE_DIR}/cni-plugins-unpack`,
      cniInstalledList: CNI_PLUGINS_LIST,
    });
  },
  deleteScript: (ctx) =>
    render("scripts/uninstall-kubelet.sh.hbs", {
      ...scriptValues(ctx.machine.name, ctx.os, "install-kubelet"),
      binaries: kubernetesArtifacts(ctx).map(withStaging),
      crictlDest: crictlArtifact(ctx).dest,
      cniBinDir: CNI_BIN_DIR,
      cniBinParent: dirname(CNI_BIN_DIR),
      cniInstalledList: CNI_PLUGINS_LIST,
    }),
};
