import { ARCHES } from "../stack/types";
import { render } from "../render";
import type { KubeBinary } from "../pins";
import { BIN_DIR, STATE_DIR } from "./constants";
import type { Step, StepContext } from "./types";
import { scriptValues } from "./values";

const BINARIES: KubeBinary[] = ["kubelet", "kubeadm", "kubectl"];

export interface Artifact {
  name: string;
  url: string;
  sha256: string;
  dest: string;
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

export const installKubelet: Step = {
  name: "install-kubelet",
  title: "Download kubelet, kubeadm, kubectl and crictl, verified against pinned sha256 checksums",
  waitsForControlPlane: false,
  appliesTo: () => true,
  files: () => [],
  script: (ctx) => {
    const crictl = crictlArtifact(ctx);
    return render("scripts/install-kubelet.sh.hbs", {
      ...scriptValues(ctx, "install-kubelet"),
      binDir: BIN_DIR,
      binaries: kubernetesArtifacts(ctx),
      crictlUrl: crictl.url,
      crictlSha256: crictl.sha256,
      crictlDest: crictl.dest,
      crictlTarball: `${STATE_DIR}/crictl.tar.gz`,
      crictlUnpackDir: `${STATE_DIR}/crictl-unpack`,
    });
  },
  deleteScript: (ctx) =>
    render("scripts/uninstall-kubelet.sh.hbs", {
      ...scriptValues(ctx, "install-kubelet"),
      binaries: kubernetesArtifacts(ctx),
      crictlDest: crictlArtifact(ctx).dest,
    }),
};
