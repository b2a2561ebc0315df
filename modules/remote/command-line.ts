/**
 * How a script runs privileged on a machine: the command line for each Privilege. Every resource (RemoteScript,
 * RemoteFile, UnitState) runs through session.ts, which picks the Privilege from the target, so a script runs the
 * same way whichever resource carries it.
 *
 * The script is always one quoted argument of `/bin/sh -c`, so the remote login shell (bash, zsh, fish...)
 * never interprets it.
 *
 * Sudo with a password. A resource cannot answer sudo's prompt interactively (the whole standard input is written
 * at once), so the protocol is: the password is the first line of standard input; anything
 * after it is the script's own input (RemoteFile's content). A small POSIX sh wrapper:
 *   1. reads that first line with the shell builtin `read` (a variable, never an argument: `ps` cannot see it);
 *   2. asks `sudo -n` whether a password is needed at all (NOPASSWD rules, cached credentials). If not, the
 *      password is dropped and the script runs under `sudo -n` with the rest of stdin: sudo never sees it;
 *   3. otherwise pipes the password to `sudo -S -k -p ''` with the builtin `printf`. Sudo's stdin holds that
 *      one line and nothing else, so a wrong password ends in "no password was provided" instead of sudo
 *      reading the script's input as further attempts. The script, once root, takes its standard input back
 *      from the wrapper (`/proc/<wrapper pid>/fd/0`: the rest of the SSH channel's input).
 * The password is thus never on a command line, in the environment, in a file, or on the script's stdin.
 * (`/proc/<pid>` needs the machine's procfs to show the wrapper's PID namespace, as every Linux system's does.)
 */
import { shellQuote } from "../render/shell";

/** How a script gets root: it already is (or needs none), passwordless sudo, or sudo with the password on stdin. */
export type Privilege = "direct" | "sudo" | "sudo-password";

/** The first line of standard input that carries the sudo password (see the module comment). */
export function sudoPasswordLine(password: string): string {
  if (/[\r\n]/.test(password)) throw new Error("the sudo password must be a single line");
  return `${password}\n`;
}

function sudoPasswordWrapper(script: string): string {
  const q = shellQuote;
  // Runs as root under sudo: take stdin back from the wrapper, forget the positional pid, run the script.
  const rooted = ['exec 0<"/proc/$1/fd/0" || exit 125', "set --", script].join("\n");
  return [
    "nf_password=",
    "IFS= read -r nf_password || [ -n \"$nf_password\" ] || { echo 'nodeforge: no sudo password on stdin' >&2; exit 125; }",
    // </dev/null: with sudo's I/O logging (log_input) even this probe would read, and swallow, the payload.
    "if sudo -n -- /bin/sh -c : </dev/null 2>/dev/null; then",
    "  nf_password=",
    `  exec sudo -n -- /bin/sh -c ${q(script)}`,
    "fi",
    `printf '%s\\n' "$nf_password" | sudo -k -S -p '' -- /bin/sh -c ${q(rooted)} nodeforge "$$"`,
  ].join("\n");
}

/** The command line that runs `script` with /bin/sh as root the way `privilege` says. */
export function privilegedCommandLine(script: string, privilege: Privilege): string {
  const shell = `/bin/sh -c ${shellQuote(script)}`;
  // -n: fail at once instead of waiting for a password nobody will type.
  if (privilege === "sudo") return `sudo -n -- ${shell}`;
  if (privilege === "sudo-password") return `/bin/sh -c ${shellQuote(sudoPasswordWrapper(script))}`;
  return shell;
}
