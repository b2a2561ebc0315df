/** Values every step script template needs (the prelude and package partials). */
import { BIN_DIR, STATE_DIR } from "./constants";
import type { StepContext } from "./types";

/** The prelude partial's values: the machine and step in messages, nodeforge's state and program directories. */
export function preludeValues(machine: string, step: string): Record<string, unknown> {
  return { machine, step, stateDir: STATE_DIR, binDir: BIN_DIR };
}

export function scriptValues(ctx: StepContext, step: string): Record<string, unknown> {
  const debian = ctx.os.family === "debian";
  return {
    ...preludeValues(ctx.machine.name, step),
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
