/**
 * `nodeforge hostkeys FILE` against a real sshd on 127.0.0.1 that offers rsa, ecdsa and ed25519 host keys (rsa
 * first): one handshake per machine, no login; ed25519 preferred for a machine not yet pinned; a pinned key is
 * scanned for its own type and compared; mismatches and unreachable machines fail the run (exit 1) naming the
 * machine. (Through a bastion: test/integration/bastion.test.ts.)
 */
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { useSshd } from "../harness/sshd";

const server = useSshd({ hostKeyTypes: ["rsa", "ecdsa", "ed25519"] });
const work = mkdtempSync(join(tmpdir(), "nodeforge-hostkeys-"));
after(() => rmSync(work, { recursive: true, force: true }));
const cli = join(__dirname, "..", "..", "modules", "cli", "main.js");

function fingerprint(line: string): string {
  const blob = Buffer.from(line.split(" ")[1]!, "base64");
  return "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

/** A stack file with these machines (`name`, `address`, `port`, optional `hostKey`). */
function stackFile(
  name: string,
  machines: { name: string; address: string; port: number; hostKey?: string }[],
): string {
  const lines = ["cluster:", "  name: keys", '  kubernetesVersion: "1.36.4"', "machines:"];
  for (const [i, m] of machines.entries()) {
    lines.push(
      `  - name: ${m.name}`,
      `    address: ${m.address}`,
      `    role: ${i === 0 ? "control-plane" : "worker"}`,
      "    os: debian-12",
      `    ssh: { port: ${m.port}, connectTimeoutSeconds: 3 }`,
      ...(m.hostKey ? [`    hostKey: ${m.hostKey}`] : []),
    );
  }
  const file = join(work, `${name}.yaml`);
  writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

function hostkeys(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, "hostkeys", ...args], { encoding: "utf8" }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** A freshly generated ecdsa public key line: not the server's. */
function otherEcdsaKey(): string {
  const file = join(work, "other_ecdsa");
  execFileSync("ssh-keygen", ["-q", "-t", "ecdsa", "-N", "", "-f", file]);
  return readFileSync(`${file}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
}

const logins = (): number => server().log().split("Accepted publickey").length - 1;

describe("nodeforge hostkeys", () => {
  test("prints the ed25519 fingerprint and line for new machines and checks pinned ones; no login", async () => {
    const { port, hostKeys } = server();
    const before = { seen: server().connectionsSeen(), logins: logins() };
    const file = stackFile("mixed", [
      { name: "cp-1", address: "127.0.0.1", port },
      { name: "worker-1", address: "localhost", port, hostKey: hostKeys.rsa },
    ]);
    const { code, stdout, stderr } = await hostkeys(file);
    assert.equal(stderr, "");
    assert.equal(
      stdout,
      `cp-1 (127.0.0.1:${port}): ${fingerprint(hostKeys.ed25519)} (ssh-ed25519): not pinned yet; compare the ` +
        `fingerprint with the machine's console, then add to cp-1 in ${file}:\n` +
        `    hostKey: ${hostKeys.ed25519}\n` +
        `worker-1 (localhost:${port}): ${fingerprint(hostKeys.rsa)} (ssh-rsa): matches the pinned key\n`,
    );
    assert.equal(code, 0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(server().connectionsSeen() - before.seen, 2, "one connection per machine");
    assert.equal(logins(), before.logins, "scanning logs in nowhere");
  });

  test("a mismatch and an unreachable machine fail the run, each named; the others still print", async () => {
    const { port, hostKeys } = server();
    const closed = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const { port: free } = probe.address() as { port: number };
        probe.close(() => resolve(free));
      });
    });
    const file = stackFile("failing", [
      { name: "cp-1", address: "127.0.0.1", port, hostKey: hostKeys.ed25519 },
      { name: "worker-1", address: "localhost", port, hostKey: otherEcdsaKey() },
      { name: "worker-2", address: "127.0.0.1", port: closed },
    ]);
    const { code, stdout, stderr } = await hostkeys(file);
    assert.equal(
      stdout,
      `cp-1 (127.0.0.1:${port}): ${fingerprint(hostKeys.ed25519)} (ssh-ed25519): matches the pinned key\n`,
    );
    const lines = stderr.split("\n");
    assert.match(
      lines[0]!,
      new RegExp(
        `^worker-1: host key mismatch for localhost:${port}: the stack file pins SHA256:\\S+ \\(ecdsa-sha2-nistp256\\), ` +
          `the machine presented ${fingerprint(hostKeys.ecdsa).replace(/[+/]/g, "\\$&")} \\(ecdsa-sha2-nistp256\\)$`,
      ),
    );
    assert.equal(lines[1], `    presented: hostKey: ${hostKeys.ecdsa}`);
    assert.equal(lines[2], `worker-2: connection to 127.0.0.1:${closed} refused (is sshd listening there?)`);
    assert.equal(lines[3], `${file}: 2 of 3 machine(s) failed the host key check`);
    assert.equal(code, 1);
  });

  test("--machine picks machines; an invalid stack file exits 2 with its problems; bad usage exits 64", async () => {
    const { port, hostKeys } = server();
    const file = stackFile("pick", [
      { name: "cp-1", address: "127.0.0.1", port, hostKey: hostKeys.ed25519 },
      { name: "worker-1", address: "localhost", port: 1 },
    ]);
    const picked = await hostkeys(file, "--machine", "cp-1");
    assert.equal(picked.code, 0);
    assert.equal(picked.stdout.split("\n").length, 2, "only cp-1 was scanned");
    const unknown = await hostkeys(file, "--machine", "cp-9");
    assert.deepEqual([unknown.code, unknown.stderr], [2, `${file}: no machine named cp-9\n`]);
    const invalid = join(work, "invalid.yaml");
    writeFileSync(invalid, "cluster: { name: x }\nmachines: []\n");
    const rejected = await hostkeys(invalid);
    assert.equal(rejected.code, 2);
    assert.match(rejected.stderr, /cluster\.kubernetesVersion: is required/);
    assert.equal((await hostkeys()).code, 64);
    assert.equal((await hostkeys(file, "--timeout", "soon")).code, 64);
  });
});
