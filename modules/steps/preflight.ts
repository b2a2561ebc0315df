import { render } from "../render";
import { ownedPaths } from "./owned-paths";
import { renderedOnce, rootFile, type ManagedFile, type Step, type StepContext } from "./types";
import { scriptValues } from "./values";

const MODULES_FILE = "/etc/modules-load.d/nodeforge-kubernetes.conf";
const SYSCTL_FILE = "/etc/sysctl.d/99-nodeforge-kubernetes.conf";
const MODULES = ["overlay", "br_netfilter"];
/** Prefix of the fstab swap lines preflight disabled; a fixed string without sed or regex metacharacters. */
const FSTAB_MARKER = "#nodeforge-swap-off# ";

function sysctls(ctx: StepContext): { key: string; value: string }[] {
  const list = [
    { key: "net.bridge.bridge-nf-call-iptables", value: "1" },
    { key: "net.bridge.bridge-nf-call-ip6tables", value: "1" },
    { key: "net.ipv4.ip_forward", value: "1" },
  ];
  if (ctx.stack.derived.ipFamily === 6) list.push({ key: "net.ipv6.conf.all.forwarding", value: "1" });
  return list;
}

function renderFiles(ctx: StepContext): ManagedFile[] {
  return [
    rootFile(MODULES_FILE, render("preflight/modules-load.conf.hbs", { modules: MODULES })),
    rootFile(SYSCTL_FILE, render("preflight/sysctl.conf.hbs", { sysctls: sysctls(ctx) })),
  ];
}

const files = renderedOnce(renderFiles);

export const preflight: Step = {
  name: "preflight",
  title: "Check the OS and prepare the kernel (swap off, modules, sysctls)",
  waitsForControlPlane: false,
  appliesTo: () => true,
  files,
  script: (ctx) =>
    render("scripts/preflight.sh.hbs", {
      ...scriptValues(ctx.machine.name, ctx.os, "preflight"),
      osId: ctx.os.osRelease.id,
      osVersionId: ctx.os.osRelease.versionId,
      osMajorOnly: ctx.os.osRelease.majorOnly === true,
      osName: ctx.os.name,
      arch: ctx.machine.arch,
      modules: MODULES,
      modulesFile: MODULES_FILE,
      sysctls: sysctls(ctx),
      sysctlFile: SYSCTL_FILE,
      fstabMarker: FSTAB_MARKER,
    }),
  deleteScript: (ctx) =>
    render("scripts/unprepare.sh.hbs", {
      ...scriptValues(ctx.machine.name, ctx.os, "preflight"),
      fstabMarker: FSTAB_MARKER,
      owned: ownedPaths(files(ctx)),
    }),
};
