/**
 * The command line a @pulumi/command remote.Command runs for a step script. The script is one quoted
 * argument of `/bin/sh -c`, so the remote login shell (bash, zsh, ...) never interprets it.
 */
import { shellQuote } from "../render/shell";

export interface PrivilegeSettings {
  sudo: boolean;
  /** True when the sudo password is fed on the command's standard input. */
  sudoPasswordOnStdin: boolean;
}

export function scriptCommandLine(script: string, privilege: PrivilegeSettings): string {
  const shell = `/bin/sh -c ${shellQuote(script)}`;
  if (!privilege.sudo) return shell;
  // -n: fail at once instead of waiting for a password nobody will type.
  if (!privilege.sudoPasswordOnStdin) return `sudo -n -- ${shell}`;
  // -S reads the password from stdin, -p '' keeps the prompt out of the output, -k ignores cached
  // credentials so the password line is always consumed by sudo and never by the script.
  return `sudo -k -S -p '' -- ${shell}`;
}
