/**
 * Real sudo (Debian's package) for a non-root login user, against a real sshd on 127.0.0.1: passwordless sudo and
 * sudo with a password, through the providers every step uses: RemoteFile (content on stdin after the password
 * line) and RemoteScript (the step's script, nothing on its stdin), both over the session pool. While a slow
 * command runs, every process's
 * arguments (`ps -eo args`) and environment are polled for the password; afterwards every file written under
 * /tmp, /var/tmp, /var/log (sudo's log and I/O log included) and the users' homes is searched for it.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { remoteFileProvider, type RemoteFileInputs } from "../../modules/remote/remote-file";
import { remoteScriptProvider } from "../../modules/remote/remote-script";
import { closeAllSessions, runRemote } from "../../modules/remote/session";
import type { SshTarget } from "../../modules/remote/types";
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

/** Runs `script` as a step's RemoteScript does on create; resolves with what it wrote to its output file. */
async function runAsStep(sshTarget: SshTarget, script: string): Promise<string> {
  const out = join(work, `step-${Math.random().toString(36).slice(2)}.out`);
  await remoteScriptProvider.create({
    target: sshTarget,
    step: "probe",
    script: `{ ${script}\n} > '${out}'`,
    deleteScript: "",
    triggers: [],
  });
  try {
    return readFileSync(out, "utf8");
  } finally {
    rmSync(out, { force: true });
  }
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

  test("a step's script runs as root, with nothing left on its stdin", async () => {
    const { withPassword } = users();
    const output = await runAsStep(
      target(withPassword, withPassword.password),
      "id -u; id -un; printf 'stdin:['; cat; printf ']\\n'",
    );
    assert.equal(output, "0\nroot\nstdin:[]\n");
  });

  test("the password is in no process's arguments or environment while slow commands run", async () => {
    const { withPassword } = users();
    const watch = watchProcesses(withPassword.password);
    const slow = "sleep 1.5; id -u";
    const [session, step] = await Promise.all([
      runRemote(target(withPassword, withPassword.password), slow, { stdin: "payload\n" }),
      runAsStep(target(withPassword, withPassword.password), slow),
    ]);
    const { samples, leaks, sawSleep } = await watch.stop();
    assert.deepEqual([session.code, session.stdout, step], [0, "0\n", "0\n"]);
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
    await assert.rejects(runAsStep(target(withPassword, wrong), "touch /must-not-exist"), {
      message:
        "worker-1: probe: create script exited 1: Sorry, try again.\n\n" +
        "sudo: no password was provided\nsudo: 1 incorrect password attempt",
    });
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
  test("RemoteFile and a step's script run as root with sudo -n", async () => {
    const { nopasswd } = users();
    const path = join(work, "nopasswd", "app.conf");
    await remoteFileProvider.create(fileInputs(path, target(nopasswd), "n = 1\n"));
    assert.equal(readFileSync(path, "utf8"), "n = 1\n");
    assert.equal(statSync(path).uid, 0);
    assert.equal(await runAsStep(target(nopasswd), "id -u"), "0\n");
  });

  test("a password configured although sudo needs none is never handed to sudo", async () => {
    const { nopasswd } = users();
    const path = join(work, "nopasswd", "with-password.conf");
    const secret = nopasswd.password;
    await remoteFileProvider.create(fileInputs(path, target(nopasswd, secret), "payload line\n"));
    assert.equal(readFileSync(path, "utf8"), "payload line\n");
    assert.equal(
      await runAsStep(target(nopasswd, secret), "id -u; printf 'stdin:['; cat; printf ']\\n'"),
      "0\nstdin:[]\n",
    );
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
