/**
 * Connection faults against a real sshd on 127.0.0.1 (and plain TCP listeners that misbehave), through the
 * RemoteFile provider and its session pool: sshd stopped (refused: retried with backoff, then a clear error; or
 * back during the backoff: converges), a host that accepts TCP and never speaks (timeout per attempt), one that
 * hangs up before the handshake, a key or user sshd does not accept and a wrong host key (failed at once, no
 * retry: counted on the server side). Every error names the machine and the file; re-runs converge; no partial
 * or temp files are left. Every step script (RemoteScript) and unit check (UnitState) runs through the same pool.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { remoteFileProvider, type RemoteFileInputs } from "../../modules/remote/remote-file";
import { backoffMs, closeAllSessions, sessionStats } from "../../modules/remote/session";
import type { SshTarget } from "../../modules/remote/types";
import { useSshd } from "../harness/sshd";

after(closeAllSessions);
const server = useSshd();
const work = mkdtempSync(join(tmpdir(), "nodeforge-faults-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** Figures measured here, printed at the end for the record. */
const figures: string[] = [];
after(() => {
  for (const line of figures) console.log(`measured: ${line}`);
});

function inputs(path: string, target: SshTarget, content = "converged = true\n"): RemoteFileInputs {
  return { target, path, content, mode: "0644", owner: "root", group: "root" };
}

function fingerprint(line: string): string {
  const blob = Buffer.from(line.split(" ")[1]!, "base64");
  return "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

/** sshd writes its log asynchronously; let it catch up before counting. */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 300));

/** A TCP listener on 127.0.0.1 that does `onSocket` with each connection; counts them. */
async function listener(
  onSocket: (socket: Socket) => void,
): Promise<{ port: number; accepted: () => number; close(): Promise<void> }> {
  let accepted = 0;
  const sockets = new Set<Socket>();
  const tcp: Server = createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    onSocket(socket);
  });
  await new Promise<void>((resolve) => tcp.listen(0, "127.0.0.1", resolve));
  return {
    port: (tcp.address() as { port: number }).port,
    accepted: () => accepted,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        tcp.close(() => resolve());
      }),
  };
}

/** The directory holds exactly `names`: no temp files, nothing partial. */
function assertOnly(dir: string, names: string[]): void {
  assert.deepEqual(readdirSync(dir).sort(), [...names].sort());
}

describe("backoff", () => {
  test("doubles from 0.5 s and stops growing at 8 s", () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(backoffMs), [500, 1000, 2000, 4000, 8000, 8000, 8000]);
  });
});

describe("sshd stopped", () => {
  test("connection refused: retried with backoff, then an error naming the machine, file and attempts", async () => {
    await closeAllSessions();
    await server().kill();
    const path = join(work, "refused", "app.conf");
    const attempts = sessionStats().attempts;
    const started = Date.now();
    try {
      const rejection = await remoteFileProvider
        .create(inputs(path, server().target({ machine: "cp-1", retries: 3 })))
        .then(
          () => assert.fail("sshd is down"),
          (error: Error) => error,
        );
      const elapsed = (Date.now() - started) / 1000;
      assert.match(
        rejection.message,
        new RegExp(
          `^cp-1: write ${path}: connection to 127\\.0\\.0\\.1:${server().port} refused \\(is sshd listening there\\?\\) ` +
            "\\(4 attempts over 3\\.[0-9]s\\)$",
        ),
      );
      assert.equal(sessionStats().attempts - attempts, 4, "1 attempt + 3 retries");
      // 0.5 + 1 + 2 s of backoff; refusals themselves are immediate.
      assert.ok(elapsed >= 3.5 && elapsed < 4.5, `took ${elapsed} s`);
      figures.push(`refused, retries 3: 4 attempts, failed after ${elapsed.toFixed(2)} s (backoff 0.5+1+2 s)`);
      assert.equal(existsSync(dirname(path)), false);
    } finally {
      await server().start();
    }
  });

  test("sshd back during the backoff: a later attempt connects and the write converges", async () => {
    await closeAllSessions();
    await server().kill();
    const path = join(work, "comes-back", "app.conf");
    const attempts = sessionStats().attempts;
    const started = Date.now();
    const writing = remoteFileProvider.create(inputs(path, server().target({ machine: "cp-1", retries: 4 })));
    await new Promise((resolve) => setTimeout(resolve, 700));
    await server().start();
    await writing;
    const elapsed = (Date.now() - started) / 1000;
    const made = sessionStats().attempts - attempts;
    assert.equal(readFileSync(path, "utf8"), "converged = true\n");
    assertOnly(dirname(path), ["app.conf"]);
    // Attempts at 0 and 0.5 s were refused; sshd was back (at about 0.8 s) for the one at 1.5 s.
    assert.equal(made, 3);
    figures.push(
      `sshd back after 0.7 s, retries 4: connected on attempt ${made}, written after ${elapsed.toFixed(2)} s`,
    );
  });
});

describe("a host that accepts TCP and never speaks", () => {
  test("each attempt times out after connectTimeoutSeconds; the error comes after (retries + 1) of them", async () => {
    const silent = await listener(() => undefined);
    const path = join(work, "silent", "app.conf");
    const started = Date.now();
    try {
      const target = server().target({ machine: "cp-1", port: silent.port, connectTimeoutSeconds: 1, retries: 2 });
      const rejection = await remoteFileProvider.create(inputs(path, target)).then(
        () => assert.fail("a silent host must time out"),
        (error: Error) => error,
      );
      const elapsed = (Date.now() - started) / 1000;
      assert.match(
        rejection.message,
        new RegExp(
          `^cp-1: write ${path}: connection to 127\\.0\\.0\\.1:${silent.port} timed out after 1s ` +
            "\\(3 attempts over 4\\.[0-9]s\\)$",
        ),
      );
      assert.equal(silent.accepted(), 3, "3 connections reached the host");
      // 3 x 1 s of timeouts + 0.5 + 1 s of backoff.
      assert.ok(elapsed >= 4.5 && elapsed < 5.5, `took ${elapsed} s`);
      figures.push(
        `silent host, timeout 1 s, retries 2: ${silent.accepted()} connections, failed after ${elapsed.toFixed(2)} s`,
      );
    } finally {
      await silent.close();
    }
    assert.equal(existsSync(dirname(path)), false);
  });
});

describe("a host that hangs up before the handshake", () => {
  test("'Connection lost before handshake' is transient: retried, then reported", async () => {
    const rude = await listener((socket) => socket.destroy());
    const path = join(work, "hangs-up", "app.conf");
    try {
      const target = server().target({ machine: "cp-1", port: rude.port, retries: 1 });
      await assert.rejects(remoteFileProvider.create(inputs(path, target)), (error: Error) => {
        assert.match(
          error.message,
          new RegExp(
            `^cp-1: write ${path}: ssh connection to 127\\.0\\.0\\.1:${rude.port} failed: ` +
              "Connection lost before handshake \\(2 attempts over 0\\.[0-9]s\\)$",
          ),
        );
        return true;
      });
      assert.equal(rude.accepted(), 2);
    } finally {
      await rude.close();
    }
  });
});

describe("failures that are not retried", () => {
  test("a key sshd does not accept fails at once: one connection on the server side", async () => {
    await closeAllSessions();
    const strangerFile = join(work, "stranger_key");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", strangerFile]);
    const privateKey = readFileSync(strangerFile, "utf8");
    const path = join(work, "auth", "app.conf");
    await settle();
    const seen = server().connectionsSeen();
    const attempts = sessionStats().attempts;
    const started = Date.now();
    await assert.rejects(
      remoteFileProvider.create(inputs(path, server().target({ machine: "cp-1", privateKey, retries: 5 }))),
      {
        message:
          `cp-1: write ${path}: authentication as root at 127.0.0.1:${server().port} failed: ` +
          "the private key was not accepted",
      },
    );
    const elapsed = Date.now() - started;
    await settle();
    assert.equal(server().connectionsSeen() - seen, 1, "sshd saw one connection");
    assert.equal(sessionStats().attempts - attempts, 1);
    assert.ok(elapsed < 1000, `failed in ${elapsed} ms`);
    figures.push(
      `unaccepted key, retries 5: ${server().connectionsSeen() - seen} server-side connection, ${elapsed} ms`,
    );
    assert.equal(existsSync(dirname(path)), false);
  });

  test("a user sshd does not know fails at once the same way", async () => {
    await closeAllSessions();
    const path = join(work, "auth-user", "app.conf");
    await settle();
    const seen = server().connectionsSeen();
    await assert.rejects(
      remoteFileProvider.create(inputs(path, server().target({ machine: "cp-1", user: "nosuchuser", retries: 5 }))),
      {
        message:
          `cp-1: write ${path}: authentication as nosuchuser at 127.0.0.1:${server().port} failed: ` +
          "the private key was not accepted",
      },
    );
    await settle();
    assert.equal(server().connectionsSeen() - seen, 1);
    assert.match(server().log(), /Invalid user nosuchuser from 127\.0\.0\.1/);
  });

  test("a wrong host key fails at once with both fingerprints, and nothing is written", async () => {
    await closeAllSessions();
    const impostorFile = join(work, "impostor_key");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", impostorFile]);
    const wrong = readFileSync(`${impostorFile}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
    const path = join(work, "mismatch", "app.conf");
    await settle();
    const seen = server().connectionsSeen();
    const logins = server().log().split("Accepted publickey").length;
    await assert.rejects(
      remoteFileProvider.create(inputs(path, server().target({ machine: "cp-1", hostKey: wrong, retries: 5 }))),
      (error: Error) => {
        assert.ok(error.message.startsWith(`cp-1: write ${path}: `));
        assert.equal(
          error.message,
          `cp-1: write ${path}: host key mismatch for 127.0.0.1:${server().port}: expected ${fingerprint(wrong)}, ` +
            `presented ${fingerprint(server().hostKey)} (ssh-ed25519); refusing to connect`,
        );
        return true;
      },
    );
    await settle();
    assert.equal(server().connectionsSeen() - seen, 1);
    assert.equal(server().log().split("Accepted publickey").length, logins, "no login");
    assert.equal(existsSync(dirname(path)), false);
  });

  test("after each fault, the re-run with the right settings converges", async () => {
    await closeAllSessions();
    for (const name of ["refused", "silent", "hangs-up", "auth", "auth-user", "mismatch"]) {
      const path = join(work, name, "app.conf");
      await remoteFileProvider.create(inputs(path, server().target({ machine: "cp-1", retries: 3 })));
      assert.equal(readFileSync(path, "utf8"), "converged = true\n");
      assertOnly(dirname(path), ["app.conf"]);
    }
  });
});
