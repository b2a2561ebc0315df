/**
 * Real sudo (Debian's package) for a non-root login user, against a real sshd on 127.0.0.1: passwordless sudo and
 * sudo with a password, through both resource kinds. RemoteFile runs through the session pool; remote.Command's
 * side is the exact line `scriptCommandLine` produces, run over SSH with the password on stdin the way
 * @pulumi/command feeds `stdin` (all of it written at once, then EOF). While a slow command runs, every process's
 * arguments (`ps -eo args`) and environment are polled for the password; afterwards every file written under
 * /tmp, /var/tmp, /var/log (sudo's log and I/O log included) and the users' homes is searched for it.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { scriptCommandLine, sudoPasswordLine } from "../../modules/remote/command-line";
import { remoteFileProvider, type RemoteFileInputs } from "../../modules/remote/remote-file";
import { closeAllSessions, runRemote, type RemoteResult } from "../../modules/remote/session";
import type { SshTarget } from "../../modules/remote/types";
import { runLikePulumiCommand as runCommand } from "../harness/command-dial";
import { startSshd, type Sshd } from "../harness/sshd";
import { createSudoUsers, type SudoUsers, type TestUser } from "../harness/users";

/** Root-only (0700): a file appearing here was written by root. */
const work = mkdtempSync(join(tmpdir(), "nodeforge-sudo-"));
let startedAt = 0;
let sshd: Sshd | undefined;
let sudoUsers: SudoUsers | undefined;
// One hook, in order (Node 20 runs top-level before hooks concurrently): sshd first, whose client key the users
// get, then the users and the sudoers drop-in.
before(async () => {
  startedAt = Math.floor(Date.now() / 1000) - 1;
  sshd = await startSshd();
  sudoUsers = createSudoUsers(sshd.clientPublicKey);
});
after(async () => {
  await closeAllSessions();
  await sshd?.stop();
  sudoUsers?.remove();
  rmSync(work, { recursive: true, force: true });
});
const server = (): Sshd => sshd ?? assert.fail("sshd did not start");
const users = (): SudoUsers => sudoUsers ?? assert.fail("the sudo test users were not created");

function target(user: TestUser, sudoPassword?: string): SshTarget {
  return server().target({
    machine: "worker-1",
    user: user.name,
    sudo: true,
    ...(sudoPassword === undefined ? {} : { sudoPassword }),
  });
}

function fileInputs(path: string, sshTarget: SshTarget, content: string): RemoteFileInputs {
  return { target: sshTarget, path, content, mode: "0600", owner: "root", group: "root" };
}

/** One remote.Command operation against the target, dialled and fed the way @pulumi/command does it. */
function runLikePulumiCommand(sshTarget: SshTarget, line: string, stdin?: string): Promise<RemoteResult> {
  const { host, port, user, privateKey, hostKey } = sshTarget;
  return runCommand({ host, port, user, privateKey, hostKey }, line, stdin);
}

/** Every process's command line, from /proc (what `ps -eo args` shows), and environment (root reads them all). */
function processTexts(withEnvironment: boolean): string[] {
  const texts: string[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    for (const file of withEnvironment ? ["cmdline", "environ"] : ["cmdline"]) {
      try {
        texts.push(readFileSync(`/proc/${entry}/${file}`, "latin1").replace(/\0/g, " "));
      } catch {
        // The process ended while we looked.
      }
    }
  }
  return texts;
}

interface ProcessWatch {
  stop(): Promise<{ samples: number; leaks: string[]; sawSleep: boolean }>;
}

/** Polls `ps -eo args` every 20 ms and /proc/<pid>/{cmdline,environ} every 100 ms until stop(). */
function watchProcesses(secret: string): ProcessWatch {
  let running = true;
  let samples = 0;
  let sawSleep = false;
  const leaks: string[] = [];
  const loop = (async () => {
    for (let round = 0; running; round++) {
      const listing = execFileSync("ps", ["-eo", "args"], { encoding: "latin1" }).split("\n");
      const texts = round % 5 === 0 ? [...listing, ...processTexts(true)] : listing;
      samples += 1;
      for (const text of texts) {
        if (text.includes(secret)) leaks.push(text);
        if (text.includes("sleep 1.5")) sawSleep = true;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { samples, leaks, sawSleep };
    },
  };
}

/** Regular files under `dirs` changed since the test started (find -newermt), on their own file systems. */
function filesChangedSince(dirs: string[]): string[] {
  const present = dirs.filter((dir) => existsSync(dir));
  const output = execFileSync(
    "find",
    [...present, "-xdev", "-type", "f", "-newermt", `@${startedAt}`, "-size", "-64M", "-print0"],
    { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
  );
  return output.split("\0").filter(Boolean);
}

function filesContaining(files: string[], secret: string): string[] {
  const needle = Buffer.from(secret, "utf8");
  return files.filter((file) => {
    try {
      return readFileSync(file).includes(needle);
    } catch {
      return false; // removed meanwhile, or not readable as a regular file any more
    }
  });
}

describe("sudo with a password (user nftestpw)", () => {
  test("RemoteFile writes as root: the password goes to sudo, the content arrives whole", async () => {
    const { withPassword } = users();
    const path = join(work, "password", "app.conf");
    // A first content line that looks like a password line: it must land in the file, not in sudo.
    const content = `${withPassword.password}-not-it\nsecond line\n`;
    const { id, outs } = await remoteFileProvider.create(
      fileInputs(path, target(withPassword, withPassword.password), content),
    );
    assert.equal(readFileSync(path, "utf8"), content);
    assert.equal(statSync(path).uid, 0);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual((await remoteFileProvider.read(id, outs)).props, outs);
    await remoteFileProvider.delete(id, outs);
    assert.equal(existsSync(path), false);
  });

  test("remote.Command's exact line runs as root, with nothing left on the script's stdin", async () => {
    const { withPassword } = users();
    const line = scriptCommandLine("id -u; id -un; printf 'stdin:['; cat; printf ']\\n'", {
      sudo: true,
      sudoPasswordOnStdin: true,
    });
    assert.ok(!line.includes(withPassword.password));
    const result = await runLikePulumiCommand(target(withPassword), line, sudoPasswordLine(withPassword.password));
    assert.deepEqual(result, { code: 0, stdout: "0\nroot\nstdin:[]\n", stderr: "" });
  });

  test("the password is in no process's arguments or environment while slow commands run", async () => {
    const { withPassword } = users();
    const watch = watchProcesses(withPassword.password);
    const slow = "sleep 1.5; id -u";
    const line = scriptCommandLine(slow, { sudo: true, sudoPasswordOnStdin: true });
    const [session, command] = await Promise.all([
      runRemote(target(withPassword, withPassword.password), slow, { stdin: "payload\n" }),
      runLikePulumiCommand(target(withPassword), line, sudoPasswordLine(withPassword.password)),
    ]);
    const { samples, leaks, sawSleep } = await watch.stop();
    assert.deepEqual([session.code, session.stdout, command.code, command.stdout], [0, "0\n", 0, "0\n"]);
    assert.ok(samples >= 20, `polled ${samples} times`);
    assert.ok(sawSleep, "the poller saw the commands running (it would have seen the password)");
    assert.deepEqual(leaks, []);
  });

  test("a wrong password fails with sudo's own words, runs and writes nothing, echoes nothing", async () => {
    const { withPassword } = users();
    const wrong = "not the password";
    const path = join(work, "password", "wrong.conf");
    const rejection = await remoteFileProvider.create(fileInputs(path, target(withPassword, wrong), "x\n")).then(
      () => assert.fail("a wrong sudo password must fail"),
      (error: Error) => error,
    );
    assert.equal(
      rejection.message,
      // sudo ends the empty prompt it re-issued with a newline when stdin ends: the blank line is its own.
      `worker-1: write ${path}: exited 1: Sorry, try again.\n\n` +
        "sudo: no password was provided\nsudo: 1 incorrect password attempt",
    );
    assert.equal(existsSync(path), false);
    const line = scriptCommandLine("touch /must-not-exist", { sudo: true, sudoPasswordOnStdin: true });
    const result = await runLikePulumiCommand(target(withPassword), line, sudoPasswordLine(wrong));
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      "Sorry, try again.\n\nsudo: no password was provided\nsudo: 1 incorrect password attempt\n",
    );
    assert.equal(existsSync("/must-not-exist"), false);
  });

  test("without the password, sudo -n fails at once saying one is required", async () => {
    const { withPassword } = users();
    const path = join(work, "password", "none.conf");
    await assert.rejects(remoteFileProvider.create(fileInputs(path, target(withPassword), "x\n")), {
      message: `worker-1: write ${path}: exited 1: sudo: a password is required`,
    });
  });
});

describe("passwordless sudo (user nftest)", () => {
  test("RemoteFile and remote.Command's line run as root with sudo -n", async () => {
    const { nopasswd } = users();
    const path = join(work, "nopasswd", "app.conf");
    await remoteFileProvider.create(fileInputs(path, target(nopasswd), "n = 1\n"));
    assert.equal(readFileSync(path, "utf8"), "n = 1\n");
    assert.equal(statSync(path).uid, 0);
    const line = scriptCommandLine("id -u", { sudo: true, sudoPasswordOnStdin: false });
    assert.match(line, /^sudo -n -- \/bin\/sh -c /);
    assert.deepEqual(await runLikePulumiCommand(target(nopasswd), line), { code: 0, stdout: "0\n", stderr: "" });
  });

  test("a password configured although sudo needs none is never handed to sudo", async () => {
    const { nopasswd } = users();
    const path = join(work, "nopasswd", "with-password.conf");
    const secret = nopasswd.password;
    await remoteFileProvider.create(fileInputs(path, target(nopasswd, secret), "payload line\n"));
    assert.equal(readFileSync(path, "utf8"), "payload line\n");
    const line = scriptCommandLine("id -u; printf 'stdin:['; cat; printf ']\\n'", {
      sudo: true,
      sudoPasswordOnStdin: true,
    });
    const result = await runLikePulumiCommand(target(nopasswd), line, sudoPasswordLine(secret));
    assert.deepEqual(result, { code: 0, stdout: "0\nstdin:[]\n", stderr: "" });
  });
});

describe("afterwards", () => {
  test("the passwords are in no log and no file: sudo's log and I/O log, sshd's log, /tmp, /var/tmp, homes", () => {
    const { withPassword, nopasswd, sudoLog, ioLogDir } = users();
    // The logs are real and hold what they should, so searching them means something.
    const log = readFileSync(sudoLog, "utf8");
    assert.match(log, /nftestpw : .*COMMAND=\/bin\/sh -c/s);
    assert.match(log, /nftestpw : 1 incorrect password attempt/);
    assert.match(log, /nftest : .*COMMAND=\/bin\/sh -c/s);
    const ioLogs = filesChangedSince([ioLogDir]);
    assert.ok(
      ioLogs.some((file) => file.endsWith("/stdin")),
      "sudo recorded the commands' input",
    );
    assert.ok(
      ioLogs.some((file) => file.endsWith("/stdout")),
      "sudo recorded the commands' output",
    );
    assert.ok(server().log().includes("Accepted publickey for nftestpw"));

    const files = filesChangedSince(["/tmp", "/var/tmp", "/var/log", "/run/log", withPassword.home, nopasswd.home]);
    assert.ok(files.includes(sudoLog));
    for (const password of [withPassword.password, nopasswd.password]) {
      assert.deepEqual(filesContaining(files, password), []);
      assert.ok(!server().log().includes(password));
    }
  });
});
