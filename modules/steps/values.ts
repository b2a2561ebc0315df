/** Values every step script template needs (the prelude and package partials). */
import { STATE_DIR } from "./constants";
import type { StepContext } from "./types";

export function scriptValues(ctx: StepContext, step: string): Record<string, unknown> {
  const debian = ctx.os.family === "debian";
  return {
    machine: ctx.machine.name,
    step,
    stateDir: STATE_DIR,
    packageTool: debian ? "apt-get" : "dnf",
    isInstalledCommand: ctx.os.isInstalledCommand,
    installCommand: ctx.os.installCommand,
    listInstalledCommand: ctx.os.listInstalledCommand,
    removeCommand: ctx.os.removeCommand,
    refreshCommand: debian
      ? 'DEBIAN_FRONTEND=noninteractive apt-get -q update || nf_fail "apt-get update failed"'
      : ": # dnf refreshes its metadata itself",
  };
}
