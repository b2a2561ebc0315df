import { posix } from "node:path";
import { ARCHES } from "../stack";
import { render } from "../render";
import {
  BIN_DIR,
  CGROUP_DRIVER,
  CNI_BIN_DIR,
  CNI_CONF_DIR,
  CONTAINERD_CERTS_DIR,
  CONTAINERD_SOCKET,
  CRI_ENDPOINT,
  RUNC_PATH,
  STATE_DIR,
} from "./constants";
import { filesHash, sha256 } from "./hash";
import { ownedPaths } from "./owned-paths";
import { renderedOnce, rootFile, type ManagedFile, type Step, type StepContext } from "./types";
import { scriptValues } from "./values";

/** The programs nodeforge installed for containerd (not those the machine had), one path per line. */
const INSTALLED_LIST = `${STATE_DIR}/containerd.installed`;
/** Present when the machine had a containerd before nodeforge's: its data in /var/lib/containerd is not ours. */
const PREEXISTING_MARK = `${STATE_DIR}/containerd.preexisting`;

/** The registry API endpoint behind a registry name (Docker Hub's differs from its name). */
function registryServer(host: string): string {
  return host === "docker.io" ? "https://registry-1.docker.io" : `https://${host}`;
}

export interface ContainerdRelease {
  version: string;
  /** The release tarball (bin/containerd, bin/containerd-shim-runc-v2, bin/ctr, ...). */
  url: string;
  sha256: string;
  runcUrl: string;
  runcSha256: string;
}

/**
 * The containerd release pinned for the stack's Kubernetes version and the pinned runc, for this machine's arch,
 * with the stack's own checksums (a mirror's builds) where it names them.
 */
export function containerdRelease(ctx: StepContext): ContainerdRelease {
  const arch = ctx.machine.arch;
  if (!ARCHES.includes(arch)) throw new Error(`${ctx.machine.name}: unsupported arch ${arch}`);
  const version = ctx.release.containerdVersion;
  const own = ctx.stack.artifacts.sha256[arch];
  const sha256 = own?.containerd ?? ctx.pins.containerd[version]?.[arch];
  if (!sha256) throw new Error(`${ctx.machine.name}: no pinned checksum for containerd ${version} ${arch}`);
  const runc = ctx.pins.runc.version;
  const { containerdBaseUrl, runcBaseUrl } = ctx.stack.artifacts;
  return {
    version,
    url: `${containerdBaseUrl}/v${version}/containerd-${version}-linux-${arch}.tar.gz`,
    sha256,
    runcUrl: `${runcBaseUrl}/v${runc}/runc.${arch}`,
    runcSha256: own?.runc ?? ctx.pins.runc.sha256[arch],
  };
}

function renderFiles(ctx: StepContext): ManagedFile[] {
  const list = [
    rootFile(
      "/etc/containerd/config.toml",
      render("containerd/config.toml.hbs", {
        socket: CONTAINERD_SOCKET,
        pauseImage: ctx.release.pauseImage,
        restrictOOMScoreAdj: ctx.stack.containerd.restrictOOMScoreAdj,
        cgroupDriver: CGROUP_DRIVER,
        systemdCgroup: CGROUP_DRIVER === "systemd",
        cniBinDir: CNI_BIN_DIR,
        cniConfDir: CNI_CONF_DIR,
        certsDir: CONTAINERD_CERTS_DIR,
      }),
    ),
    rootFile(
      "/etc/systemd/system/containerd.service",
      render("containerd/containerd.service.hbs", { binDir: BIN_DIR }),
    ),
    rootFile("/etc/crictl.yaml", render("containerd/crictl.yaml.hbs", { criEndpoint: CRI_ENDPOINT })),
  ];
  for (const [registry, mirrors] of Object.entries(ctx.stack.containerd.registryMirrors)) {
    list.push(
      rootFile(
        `${CONTAINERD_CERTS_DIR}/${registry}/hosts.toml`,
        render("containerd/hosts.toml.hbs", { registry, server: registryServer(registry), mirrors }),
      ),
    );
  }
  return list;
}

const files = renderedOnce(renderFiles);

/** What installs and removes containerd share: where its programs go and where nodeforge lists its own. */
function programValues() {
  return {
    binDir: BIN_DIR,
    runcDir: posix.dirname(RUNC_PATH),
    installedList: INSTALLED_LIST,
    preexistingMark: PREEXISTING_MARK,
  };
}

export const installContainerd: Step = {
  name: "install-containerd",
  title: "Install the node's base packages and the pinned containerd and runc releases, configure and start containerd",
  waitsForControlPlane: false,
  appliesTo: (ctx) => ctx.stack.cluster.containerRuntime === "containerd",
  files,
  script: (ctx) => {
    const release = containerdRelease(ctx);
    return render("scripts/install-containerd.sh.hbs", {
      ...scriptValues(ctx.machine.name, ctx.os, "install-containerd"),
      ...programValues(),
      packages: ctx.os.basePackages,
      containerdUrl: release.url,
      containerdSha256: release.sha256,
      tarball: `${STATE_DIR}/containerd.tar.gz`,
      unpackDir: `${STATE_DIR}/containerd-unpack`,
      runcUrl: release.runcUrl,
      runcSha256: release.runcSha256,
      runcDest: RUNC_PATH,
      cniBinDir: CNI_BIN_DIR,
      cniConfDir: CNI_CONF_DIR,
      socket: CONTAINERD_SOCKET,
      // A new release restarts containerd as a changed file does.
      restartHash: sha256([filesHash(files(ctx)), release.sha256, release.runcSha256].join("\n")),
    });
  },
  // The script enables containerd and (re)starts it: both are checked on refresh.
  units: [{ name: "containerd.service", running: true }],
  deleteScript: (ctx) =>
    render("scripts/uninstall-containerd.sh.hbs", {
      ...scriptValues(ctx.machine.name, ctx.os, "install-containerd"),
      ...programValues(),
      containerdPath: `${BIN_DIR}/containerd`,
      shimPath: `${BIN_DIR}/containerd-shim-runc-v2`,
      socket: CONTAINERD_SOCKET,
      owned: ownedPaths(files(ctx)),
      removePackages: ctx.stack.destroy.removePackages,
    }),
};
