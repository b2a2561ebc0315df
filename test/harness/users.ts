/**
 * Real sudo for the SSH tests: two dedicated local users, created for the test and removed after it.
 *   - `nftest`:   NOPASSWD sudo
 *   - `nftestpw`: sudo that asks for its password
 * Each gets a home, a generated password set through chpasswd (on its stdin, never on a command line), and the
 * test sshd's client key in ~/.ssh/authorized_keys. The sudoers drop-in /etc/sudoers.d/nodeforge-test grants
 * the rights and, for these two users only, makes sudo log to a file and record each command's input and output
 * (log_input, log_output) there: the places a leaked password would end up. This host has no syslog or journal.
 * Everything is removed by remove() (userdel -r, the drop-in, the logs), also when a test failed.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before } from "node:test";

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  group: string;
  home: string;
  /** The login password chpasswd set (what sudo asks for). */
  password: string;
}

export interface SudoUsers {
  /** Sudo without a password (NOPASSWD). */
  nopasswd: TestUser;
  /** Sudo with its password. */
  withPassword: TestUser;
  /** sudo's own log file (`logfile=`), and its I/O log directory (`iolog_dir=`). */
  sudoLog: string;
  ioLogDir: string;
  dropIn: string;
  remove(): void;
}

const DROP_IN = "/etc/sudoers.d/nodeforge-test";
const SUDO_LOG = "/var/log/nodeforge-test-sudo.log";
const IO_LOG_DIR = "/var/log/nodeforge-test-sudo-io";
export const TEST_USER_NAMES = { nopasswd: "nftest", withPassword: "nftestpw" } as const;

function exists(name: string): boolean {
  return readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .some((line) => line.startsWith(`${name}:`));
}

function removeUser(name: string): void {
  // -f: also when one of its sessions (an sshd child) is still on its way out.
  if (exists(name)) execFileSync("userdel", ["-r", "-f", name], { stdio: ["ignore", "ignore", "pipe"] });
}

/**
 * A password sudo must take verbatim: a space, quotes, a dollar sign, a backslash and a glob character, so any
 * place that passed it through a shell unquoted would break it (and a random part, so it is findable).
 */
function generatedPassword(): string {
  return `nf ${randomBytes(12).toString("base64url")} '"$HOME\\*`;
}

function createUser(name: string, authorizedKey: string): TestUser {
  removeUser(name); // a run that was killed may have left it behind
  execFileSync("useradd", ["--create-home", "--shell", "/bin/bash", "--user-group", name]);
  const password = generatedPassword();
  execFileSync("chpasswd", { input: `${name}:${password}\n` });
  const entry = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((line) => line.startsWith(`${name}:`))!
    .split(":");
  const [uid, gid, home] = [Number(entry[2]), Number(entry[3]), entry[5]!];
  const sshDir = join(home, ".ssh");
  mkdirSync(sshDir, { mode: 0o700 });
  writeFileSync(join(sshDir, "authorized_keys"), `${authorizedKey}\n`, { mode: 0o600 });
  chownSync(sshDir, uid, gid);
  chownSync(join(sshDir, "authorized_keys"), uid, gid);
  return { name, uid, gid, group: name, home, password };
}

function installDropIn(): void {
  const { nopasswd, withPassword } = TEST_USER_NAMES;
  const text = [
    "# nodeforge SSH tests (test/harness/users.ts): removed when the test ends.",
    `Defaults:${nopasswd}, ${withPassword} logfile=${SUDO_LOG}, log_input, log_output, iolog_dir=${IO_LOG_DIR}`,
    `${nopasswd} ALL=(ALL:ALL) NOPASSWD: ALL`,
    `${withPassword} ALL=(ALL:ALL) ALL`,
    "",
  ].join("\n");
  const staged = `${DROP_IN}.tmp`; // sudo ignores names with a dot
  writeFileSync(staged, text, { mode: 0o440 });
  chmodSync(staged, 0o440);
  execFileSync("visudo", ["-c", "-q", "-f", staged]);
  renameSync(staged, DROP_IN);
}

/** Creates the users and the sudoers drop-in; `authorizedKey` is the public key line they accept. */
export function createSudoUsers(authorizedKey: string): SudoUsers {
  if (!existsSync("/usr/bin/sudo")) throw new Error("sudo is not installed (apt-get install sudo; see .ci/run)");
  const created: string[] = [];
  const remove = (): void => {
    rmSync(DROP_IN, { force: true });
    rmSync(`${DROP_IN}.tmp`, { force: true });
    for (const name of created) removeUser(name);
    rmSync(SUDO_LOG, { force: true });
    rmSync(IO_LOG_DIR, { recursive: true, force: true });
  };
  try {
    const nopasswd = createUser(TEST_USER_NAMES.nopasswd, authorizedKey);
    created.push(nopasswd.name);
    const withPassword = createUser(TEST_USER_NAMES.withPassword, authorizedKey);
    created.push(withPassword.name);
    installDropIn();
    return { nopasswd, withPassword, sudoLog: SUDO_LOG, ioLogDir: IO_LOG_DIR, dropIn: DROP_IN, remove };
  } catch (error) {
    remove();
    throw error;
  }
}

/** before/after hooks: users created before the first test, removed after the last (also on failure). */
export function useSudoUsers(authorizedKey: () => string): () => SudoUsers {
  let users: SudoUsers | undefined;
  const removeOnExit = (): void => users?.remove();
  before(() => {
    users = createSudoUsers(authorizedKey());
    process.once("exit", removeOnExit);
  });
  after(() => {
    process.removeListener("exit", removeOnExit);
    users?.remove();
  });
  return () => {
    if (!users) throw new Error("sudo users: not created (the before hook failed or has not run)");
    return users;
  };
}
