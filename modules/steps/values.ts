/** Values every step script template needs (the prelude and package partials). */
import { BIN_DIR, STATE_DIR } from "./constants";
import type { OsProfile } from "../os";

/** The prelude partial's values: the machine and step in messages, nodeforge's state and program directories. */
export function preludeValues(machine: string, step: string): Record<string, unknown> {
  return { machine, step, stateDir: STATE_DIR, binDir: BIN_DIR };
}

/** The prelude's values and the package partial's (from the machine's OS profile: no branch on the OS here). */
export function scriptValues(machine: string, os: OsProfile, step: string): Record<string, unknown> {
  return {
    ...preludeValues(machine, step),
    packageTool: os.packageTool,
    isInstalledCommand: os.isInstalledCommand,
    installCommand: os.installCommand,
    listInstalledCommand: os.listInstalledCommand,
    removeCommand: os.removeCommand,
    refreshCommand: os.refreshCommand,
  };
}
