import { render } from "../render";
import {
  BIN_DIR,
  CGROUP_DRIVER,
  CRI_ENDPOINT,
  KUBELET_BASE_CONFIG,
  KUBELET_CONFIG_DIR,
  KUBELET_ENV_FILE,
} from "./constants";
import { filesHash } from "./hash";
import { ownedPaths } from "./owned-paths";
import { renderedOnce, rootFile, type ManagedFile, type Step, type StepContext } from "./types";
import { scriptValues } from "./values";

const UNIT_FILE = "/etc/systemd/system/kubelet.service";
const DROP_IN = `${KUBELET_CONFIG_DIR}/10-nodeforge.conf`;

/** Flags for the environment file. Label and name syntax is restricted by the schema (no spaces or quotes). */
function kubeletArgs(ctx: StepContext): string {
  const { machine } = ctx;
  const args = [`--hostname-override=${machine.name}`];
  if (machine.addressFamily) args.push(`--node-ip=${machine.address}`);
  const labels = Object.entries(machine.labels).map(([k, v]) => `${k}=${v}`);
  if (labels.length > 0) args.push(`--node-labels=${labels.join(",")}`);
  return args.join(" ");
}

function renderFiles(ctx: StepContext): ManagedFile[] {
  const { stack, machine } = ctx;
  return [
    rootFile(
      UNIT_FILE,
      render("kubelet/kubelet.service.hbs", {
        baseConfig: KUBELET_BASE_CONFIG,
        envFile: KUBELET_ENV_FILE,
        kubeletPath: `${BIN_DIR}/kubelet`,
        configDir: KUBELET_CONFIG_DIR,
      }),
    ),
    rootFile(KUBELET_ENV_FILE, render("kubelet/nodeforge-kubelet.env.hbs", { args: kubeletArgs(ctx) })),
    rootFile(
      DROP_IN,
      render("kubelet/10-nodeforge.conf.hbs", {
        baseConfig: KUBELET_BASE_CONFIG,
        cgroupDriver: CGROUP_DRIVER,
        criEndpoint: CRI_ENDPOINT,
        dnsDomain: stack.cluster.dnsDomain,
        clusterDnsIp: stack.derived.clusterDnsIp,
        maxPods: stack.kubelet.maxPods,
        podPidsLimit: stack.kubelet.podPidsLimit,
        failCgroupV1: stack.kubelet.failCgroupV1,
        systemReserved: stack.kubelet.systemReserved,
        kubeReserved: stack.kubelet.kubeReserved,
        hasEvictionHard: Object.keys(stack.kubelet.evictionHard).length > 0,
        evictionHard: stack.kubelet.evictionHard,
        taints: machine.taints.map((t) => (t.value === undefined ? { key: t.key, effect: t.effect } : t)),
      }),
    ),
  ];
}

const files = renderedOnce(renderFiles);

export const configureKubelet: Step = {
  name: "configure-kubelet",
  title: "Install kubelet.service and its configuration, enable it, restart it when they change",
  // The kubelet is what joins a node to the cluster, so workers take this step once the control plane is done.
  waitsForControlPlane: true,
  appliesTo: () => true,
  files,
  script: (ctx) =>
    render("scripts/configure-kubelet.sh.hbs", {
      ...scriptValues(ctx.machine.name, ctx.os, "configure-kubelet"),
      baseConfig: KUBELET_BASE_CONFIG,
      configHash: filesHash(files(ctx)),
    }),
  // Enabled now; it runs once kubeadm has written its configuration, so only "enabled" is checked.
  units: [{ name: "kubelet.service", running: false }],
  deleteScript: (ctx) =>
    render("scripts/unconfigure-kubelet.sh.hbs", {
      ...scriptValues(ctx.machine.name, ctx.os, "configure-kubelet"),
      owned: ownedPaths(files(ctx), ["/etc/kubernetes/manifests", "/var/lib/kubelet"]),
    }),
};
