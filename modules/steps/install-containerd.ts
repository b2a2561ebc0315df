import { render } from "../render";
import {
  CGROUP_DRIVER,
  CNI_BIN_DIR,
  CNI_CONF_DIR,
  CONTAINERD_CERTS_DIR,
  CONTAINERD_SOCKET,
  CRI_ENDPOINT,
} from "./constants";
import { filesHash } from "./hash";
import { ownedPaths } from "./owned-paths";
import { renderedOnce, rootFile, type ManagedFile, type Step, type StepContext } from "./types";
import { scriptValues } from "./values";

/** The registry API endpoint behind a registry name (Docker Hub's differs from its name). */
function registryServer(host: string): string {
  return host === "docker.io" ? "https://registry-1.docker.io" : `https://${host}`;
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
      "/etc/systemd/system/containerd.service.d/10-nodeforge.conf",
      render("containerd/10-nodeforge.conf.hbs", {}),
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
  if (ctx.os.family === "rhel") {
    list.push(
      rootFile(
        "/etc/yum.repos.d/nodeforge-containerd.repo",
        render("os/containerd.repo.hbs", {
          repoUrl: ctx.stack.artifacts.rhelContainerdRepoUrl,
          gpgKey: ctx.stack.artifacts.rhelContainerdRepoGpgKey,
        }),
      ),
    );
  }
  return list;
}

const files = renderedOnce(renderFiles);

export const installContainerd: Step = {
  name: "install-containerd",
  title: "Install containerd and the node's base packages, configure and start containerd",
  waitsForControlPlane: false,
  appliesTo: (ctx) => ctx.stack.cluster.containerRuntime === "containerd",
  files,
  script: (ctx) =>
    render("scripts/install-containerd.sh.hbs", {
      ...scriptValues(ctx, "install-containerd"),
      packages: [...ctx.os.basePackages, ...ctx.os.containerdPackages],
      cniBinDir: CNI_BIN_DIR,
      cniConfDir: CNI_CONF_DIR,
      socket: CONTAINERD_SOCKET,
      configHash: filesHash(files(ctx)),
    }),
  // The script enables containerd and (re)starts it: both are checked on refresh.
  units: [{ name: "containerd.service", running: true }],
  deleteScript: (ctx) =>
    render("scripts/uninstall-containerd.sh.hbs", {
      ...scriptValues(ctx, "install-containerd"),
      socket: CONTAINERD_SOCKET,
      owned: ownedPaths(files(ctx)),
      removePackages: ctx.stack.destroy.removePackages,
    }),
};
