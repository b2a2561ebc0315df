/**
 * A machine reachable only through a bastion (test/harness/jump-network.ts): the machine's sshd runs in a network
 * namespace only the bastion's namespace can reach; the bastion's sshd listens where the host reaches it. Direct
 * access fails, via the bastion works: RemoteFile provisions a file through it, `nodeforge hostkeys` scans the
 * machine's key through it, and the component's steps (MachineStep) reach it with both host keys pinned.
 * Namespaces, veths and the route are removed at the end, also when a test fails.
 */
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { Cluster } from "../../modules/components";
import { remoteFileProvider, type RemoteFileInputs } from "../../modules/remote/remote-file";
import { remoteScriptProvider } from "../../modules/remote/remote-script";
import { closeAllSessions, sessionStats } from "../../modules/remote/session";
import type { BastionTarget, SshTarget } from "../../modules/remote/types";
import { parseStack } from "../../modules/stack";
import { createJumpNetwork, jumpResidue, type JumpNetwork } from "../harness/jump-network";
import { captureProgram, outputValue, STEP_TYPE } from "../harness/pulumi-mocks";
import { startSshd, type Sshd } from "../harness/sshd";

const BASTION_PORT = 2222;
const NO_FORWARDING_PORT = 2223;
const work = mkdtempSync(join(tmpdir(), "nodeforge-bastion-"));
let net: JumpNetwork | undefined;
const servers: Record<"bastion" | "machine" | "noForwarding", Sshd | undefined> = {
  bastion: undefined,
  machine: undefined,
  noForwarding: undefined,
};

async function teardown(): Promise<void> {
  await closeAllSessions();
  for (const server of Object.values(servers)) await server?.stop();
  net?.destroy();
}

before(async () => {
  net = createJumpNetwork();
  servers.bastion = await startSshd({ netns: net.bastionNetns, listenAddress: net.bastionAddress, port: BASTION_PORT });
  servers.noForwarding = await startSshd({
    netns: net.bastionNetns,
    listenAddress: net.bastionAddress,
    port: NO_FORWARDING_PORT,
    extraConfig: ["AllowTcpForwarding no"],
  });
  // The machine offers rsa first: a scan must still pick ed25519.
  servers.machine = await startSshd({
    netns: net.targetNetns,
    listenAddress: net.targetAddress,
    port: 22,
    hostKeyTypes: ["rsa", "ecdsa", "ed25519"],
  });
});
after(async () => {
  await teardown();
  rmSync(work, { recursive: true, force: true });
});

const network = (): JumpNetwork => net ?? assert.fail("the jump network was not created");
const bastion = (): Sshd => servers.bastion ?? assert.fail("the bastion's sshd did not start");
const machine = (): Sshd => servers.machine ?? assert.fail("the machine's sshd did not start");
const noForwarding = (): Sshd => servers.noForwarding ?? assert.fail("the second bastion sshd did not start");

function jump(overrides: Partial<BastionTarget> = {}): BastionTarget {
  return {
    host: network().bastionAddress,
    port: BASTION_PORT,
    user: "root",
    privateKey: bastion().clientPrivateKey,
    hostKey: bastion().hostKeys.ed25519,
    ...overrides,
  };
}

/** The hidden machine, through the bastion unless `bastion: undefined` is passed. */
function hidden(overrides: Partial<SshTarget> = {}): SshTarget {
  return machine().target({
    machine: "hidden-1",
    host: network().targetAddress,
    port: 22,
    hostKey: machine().hostKeys.ed25519,
    bastion: jump(),
    ...overrides,
  });
}

function fileInputs(path: string, target: SshTarget, content = "via = bastion\n"): RemoteFileInputs {
  return { target, path, content, mode: "0644", owner: "root", group: "root" };
}

const count = (text: string, prefix: string): number => text.split("\n").filter((l) => l.startsWith(prefix)).length;
const logins = (server: Sshd): number => count(server.log(), "Accepted publickey for ");
/** sshd writes its log asynchronously; let it catch up before counting. */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 300));

function fingerprint(line: string): string {
  const blob = Buffer.from(line.split(" ")[1]!, "base64");
  return "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

describe("reachability", () => {
  test("the host cannot reach the machine directly, the bastion can", async () => {
    const direct = await new Promise<string>((resolve) => {
      const socket = connect({ host: network().targetAddress, port: 22 });
      socket.setTimeout(3000, () => socket.destroy(new Error("timed out")));
      socket.on("connect", () => resolve("connected"));
      socket.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    });
    assert.match(direct, /^E(HOST|NET)UNREACH$/);

    const path = join(work, "direct", "never.conf");
    const started = Date.now();
    const rejection = await remoteFileProvider.create(fileInputs(path, hidden({ bastion: undefined }))).then(
      () => assert.fail("the machine must not be reachable without the bastion"),
      (error: Error) => error,
    );
    assert.equal(
      rejection.message,
      `hidden-1: write ${path}: ${network().targetAddress}:22 is unreachable (${direct})`,
    );
    assert.ok(Date.now() - started < 2000);
    assert.equal(existsSync(dirname(path)), false);

    // From the bastion's namespace the machine answers with its SSH banner.
    const banner = execFileSync(
      "ip",
      ["netns", "exec", network().bastionNetns, "ssh-keyscan", "-T", "3", "-t", "ed25519", network().targetAddress],
      { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] },
    );
    assert.equal(banner.trim(), `${network().targetAddress} ${machine().hostKeys.ed25519}`);
  });
});

describe("RemoteFile through the bastion", () => {
  test("creates, reads, updates and deletes a file, over one connection per hop", async () => {
    await closeAllSessions();
    await settle();
    const before = { bastion: logins(bastion()), machine: logins(machine()), connects: sessionStats().connects };
    const path = join(work, "via", "etc", "app.conf");
    const { id, outs } = await remoteFileProvider.create(fileInputs(path, hidden()));
    assert.equal(readFileSync(path, "utf8"), "via = bastion\n");
    assert.deepEqual((await remoteFileProvider.read(id, outs)).props, outs);
    const { outs: updated } = await remoteFileProvider.update(id, outs, fileInputs(path, hidden(), "v = 2\n"));
    assert.equal(readFileSync(path, "utf8"), "v = 2\n");
    await remoteFileProvider.delete(id, updated);
    assert.equal(existsSync(path), false);
    await settle();
    assert.equal(sessionStats().connects - before.connects, 1);
    assert.equal(logins(bastion()) - before.bastion, 1, "one login on the bastion");
    assert.equal(logins(machine()) - before.machine, 1, "one login on the machine");
    // The machine saw the connection come from the bastion's inner address, not from the host.
    const lastConnection = machine()
      .log()
      .split("\n")
      .filter((l) => l.startsWith("Connection from "))
      .pop();
    assert.match(
      lastConnection ?? "",
      new RegExp(`^Connection from ${network().bastionInnerAddress.replace(/\./g, "\\.")} `),
    );
  });

  test("a wrong bastion host key is refused before any login, at once, without retries", async () => {
    await closeAllSessions();
    const impostor = machine().hostKeys.ed25519;
    await settle();
    const before = { bastion: logins(bastion()), seen: machine().connectionsSeen(), attempts: sessionStats().attempts };
    const path = join(work, "wrong-bastion-key", "never.conf");
    const started = Date.now();
    await assert.rejects(
      remoteFileProvider.create(fileInputs(path, hidden({ retries: 3, bastion: jump({ hostKey: impostor }) }))),
      {
        message:
          `hidden-1: write ${path}: host key mismatch for bastion ${network().bastionAddress}:${BASTION_PORT}: ` +
          `expected ${fingerprint(impostor)}, presented ${fingerprint(bastion().hostKeys.ed25519)} (ssh-ed25519); ` +
          "refusing to connect",
      },
    );
    assert.ok(Date.now() - started < 1500, "not retried");
    assert.equal(sessionStats().attempts - before.attempts, 1);
    await settle();
    assert.equal(logins(bastion()), before.bastion);
    assert.equal(machine().connectionsSeen(), before.seen, "the machine was never contacted");
    assert.equal(existsSync(dirname(path)), false);
  });

  test("a wrong machine host key behind the bastion is refused; nothing is written", async () => {
    await closeAllSessions();
    await settle();
    const before = logins(machine());
    const path = join(work, "wrong-machine-key", "never.conf");
    const wrong = bastion().hostKeys.ed25519;
    await assert.rejects(remoteFileProvider.create(fileInputs(path, hidden({ hostKey: wrong, retries: 3 }))), {
      message:
        `hidden-1: write ${path}: host key mismatch for ${network().targetAddress}:22 ` +
        `(via bastion ${network().bastionAddress}:${BASTION_PORT}): expected ${fingerprint(wrong)}, ` +
        `presented ${fingerprint(machine().hostKeys.ed25519)} (ssh-ed25519); refusing to connect`,
    });
    await settle();
    assert.equal(logins(machine()), before);
    assert.equal(existsSync(dirname(path)), false);
  });

  test("a bastion that forbids TCP forwarding fails with a hint, and is not retried", async () => {
    await closeAllSessions();
    await settle();
    const seen = noForwarding().connectionsSeen();
    const path = join(work, "no-forwarding", "never.conf");
    const { hostKey, clientPrivateKey: privateKey } = noForwarding();
    const target = hidden({ retries: 3, bastion: jump({ port: NO_FORWARDING_PORT, hostKey, privateKey }) });
    await assert.rejects(remoteFileProvider.create(fileInputs(path, target)), {
      message:
        `hidden-1: write ${path}: bastion ${network().bastionAddress}:${NO_FORWARDING_PORT} cannot reach ` +
        `${network().targetAddress}:22: open failed (does the bastion allow TCP forwarding for this user?)`,
    });
    await settle();
    assert.equal(noForwarding().connectionsSeen() - seen, 1);
  });

  test("the machine's sshd down behind the bastion: retried, a clear error, then the re-run converges", async () => {
    await closeAllSessions();
    await machine().kill();
    const path = join(work, "machine-down", "app.conf");
    try {
      const started = Date.now();
      await assert.rejects(remoteFileProvider.create(fileInputs(path, hidden({ retries: 1 }))), (error: Error) => {
        assert.match(
          error.message,
          new RegExp(
            `^hidden-1: write ${path}: bastion ${network().bastionAddress.replace(/\./g, "\\.")}:${BASTION_PORT} ` +
              `cannot reach ${network().targetAddress.replace(/\./g, "\\.")}:22: Connection refused ` +
              "\\(2 attempts over [0-9.]+s\\)$",
          ),
        );
        return true;
      });
      assert.ok(Date.now() - started >= 500, "waited the backoff before the retry");
      assert.equal(existsSync(dirname(path)), false);
    } finally {
      await machine().start();
    }
    await remoteFileProvider.create(fileInputs(path, hidden()));
    assert.deepEqual(readdirSync(dirname(path)), ["app.conf"]);
  });
});

describe("the component's step scripts through the bastion", () => {
  const stackText = (machineKey: string, bastionKey: string): string =>
    [
      "cluster:",
      "  name: jump",
      '  kubernetesVersion: "1.36.4"',
      "ssh:",
      "  connectTimeoutSeconds: 5",
      "  retries: 2",
      "  bastion:",
      `    address: ${network().bastionAddress}`,
      `    port: ${BASTION_PORT}`,
      "    hostKey: " + bastionKey,
      "    privateKeyConfig: bastionKey",
      "machines:",
      "  - name: hidden-1",
      `    address: ${network().targetAddress}`,
      "    role: control-plane",
      "    os: debian-12",
      `    hostKey: ${machineKey}`,
      "",
    ].join("\n");

  /** The SSH target the Cluster component gives its first step (MachineStep), as the engine resolves it. */
  async function componentTarget(machineKey: string, bastionKey: string): Promise<SshTarget> {
    const stack = parseStack(stackText(machineKey, bastionKey), "jump.yaml");
    const keys: Record<string, string> = {
      sshPrivateKey: machine().clientPrivateKey,
      bastionKey: bastion().clientPrivateKey,
    };
    const resources = await captureProgram((transformations) => {
      new Cluster("jump", { stack, secret: (key) => pulumi.secret(keys[key] ?? "") }, { transformations });
    });
    const script = resources.find((r) => r.type === STEP_TYPE);
    assert.ok(script, "a MachineStep was registered");
    return (await outputValue(script.props.target as pulumi.Input<SshTarget>)) as SshTarget;
  }

  /** Runs a step script that leaves a marker file, through the target; resolves with the marker's content. */
  async function runStep(target: SshTarget, marker: string): Promise<void> {
    await remoteScriptProvider.create({
      target,
      step: "probe",
      script: `echo reached > '${marker}'`,
      deleteScript: "",
      triggers: [],
    });
  }

  test("the component pins both host keys, with the stack's timeout and retries; its script runs", async () => {
    const target = await componentTarget(machine().hostKeys.ed25519, bastion().hostKeys.ed25519);
    assert.equal(target.hostKey, machine().hostKeys.ed25519);
    assert.equal(target.bastion?.hostKey, bastion().hostKeys.ed25519);
    assert.deepEqual([target.connectTimeoutSeconds, target.retries], [5, 2]);
    const marker = join(work, "component-reached");
    await runStep(target, marker);
    assert.equal(readFileSync(marker, "utf8"), "reached\n");
  });

  test("a wrong hostKey or bastion hostKey in the stack file is refused; the script never runs", async () => {
    await closeAllSessions();
    await settle();
    const before = { bastion: logins(bastion()), machine: logins(machine()) };
    const marker = join(work, "component-never");
    const wrongMachine = await componentTarget(bastion().hostKeys.ed25519, bastion().hostKeys.ed25519);
    await assert.rejects(runStep(wrongMachine, marker), (error: Error) => {
      assert.match(
        error.message,
        new RegExp(`^hidden-1: probe: host key mismatch for ${network().targetAddress.replace(/\./g, "\\.")}:22 `),
      );
      return true;
    });
    await closeAllSessions();
    const wrongBastion = await componentTarget(machine().hostKeys.ed25519, machine().hostKeys.ed25519);
    await assert.rejects(runStep(wrongBastion, marker), {
      message: new RegExp(`^hidden-1: probe: host key mismatch for bastion .*:${BASTION_PORT}: `),
    });
    await settle();
    assert.equal(existsSync(marker), false);
    assert.equal(logins(machine()), before.machine, "no login on the machine with a wrong key");
    // The wrong-machine-key attempt logged in to the (correctly pinned) bastion; the wrong-bastion one did not.
    assert.equal(logins(bastion()), before.bastion + 1);
  });
});

describe("nodeforge hostkeys through the bastion", () => {
  const cli = join(__dirname, "..", "..", "modules", "cli", "main.js");
  let identity: string;
  before(() => {
    identity = join(work, "bastion_key");
    writeFileSync(identity, bastion().clientPrivateKey, { mode: 0o600 });
  });

  function stackFile(name: string, machineKey?: string, bastionKey = bastion().hostKeys.ed25519): string {
    const file = join(work, `${name}.yaml`);
    const lines = [
      "# yaml-language-server: $schema=../schemas/stack.schema.json",
      "cluster:",
      "  name: jump",
      '  kubernetesVersion: "1.36.4"',
      "ssh:",
      "  bastion:",
      `    address: ${network().bastionAddress}`,
      `    port: ${BASTION_PORT}`,
      `    hostKey: ${bastionKey}`,
      "machines:",
      "  - name: hidden-1",
      `    address: ${network().targetAddress}`,
      "    role: control-plane",
      "    os: debian-12",
      ...(machineKey ? [`    hostKey: ${machineKey}`] : []),
      "",
    ];
    writeFileSync(file, lines.join("\n"));
    return file;
  }

  function hostkeys(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [cli, "hostkeys", file, "--identity", identity, "--timeout", "5"],
        { encoding: "utf8" },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });
  }

  test("a machine not yet pinned: its ed25519 fingerprint and the line to paste", async () => {
    const file = stackFile("unpinned");
    const { code, stdout, stderr } = await hostkeys(file);
    const key = machine().hostKeys.ed25519;
    assert.equal(stderr, "");
    assert.equal(
      stdout,
      `hidden-1 (${network().targetAddress}:22 via bastion ${network().bastionAddress}:${BASTION_PORT}): ` +
        `${fingerprint(key)} (ssh-ed25519): not pinned yet; compare the fingerprint with the machine's console, ` +
        `then add to hidden-1 in ${file}:\n    hostKey: ${key}\n`,
    );
    const keygen = execFileSync("ssh-keygen", ["-lf", join(machine().dir, "ssh_host_ed25519_key.pub")], {
      encoding: "utf8",
    });
    assert.equal(keygen.split(" ")[1], fingerprint(key), "the fingerprint is what ssh-keygen -lf prints");
    assert.equal(code, 0);
  });

  test("a pinned key of another type (ecdsa) is scanned for that type and matches", async () => {
    const key = machine().hostKeys.ecdsa;
    const { code, stdout } = await hostkeys(stackFile("pinned-ecdsa", key));
    assert.equal(
      stdout,
      `hidden-1 (${network().targetAddress}:22 via bastion ${network().bastionAddress}:${BASTION_PORT}): ` +
        `${fingerprint(key)} (ecdsa-sha2-nistp256): matches the pinned key\n`,
    );
    assert.equal(code, 0);
  });

  test("a pinned key that is not the machine's: a mismatch error with both fingerprints, exit 1", async () => {
    const wrong = bastion().hostKeys.ed25519;
    const file = stackFile("pinned-wrong", wrong);
    const { code, stdout, stderr } = await hostkeys(file);
    assert.equal(stdout, "");
    assert.equal(
      stderr,
      `hidden-1: host key mismatch for ${network().targetAddress}:22 via bastion ` +
        `${network().bastionAddress}:${BASTION_PORT}: the stack file pins ${fingerprint(wrong)} (ssh-ed25519), ` +
        `the machine presented ${fingerprint(machine().hostKeys.ed25519)} (ssh-ed25519)\n` +
        `    presented: hostKey: ${machine().hostKeys.ed25519}\n` +
        `${file}: 1 of 1 machine(s) failed the host key check\n`,
    );
    assert.equal(code, 1);
  });

  test("a wrong bastion key stops the scan at the bastion", async () => {
    const wrong = machine().hostKeys.ed25519;
    const file = stackFile("bastion-wrong", undefined, wrong);
    const { code, stderr } = await hostkeys(file);
    assert.equal(
      stderr,
      `hidden-1: host key mismatch for bastion ${network().bastionAddress}:${BASTION_PORT}: ` +
        `expected ${fingerprint(wrong)}, presented ${fingerprint(bastion().hostKeys.ed25519)} (ssh-ed25519); ` +
        `refusing to connect\n${file}: 1 of 1 machine(s) failed the host key check\n`,
    );
    assert.equal(code, 1);
  });
});

describe("cleanup", () => {
  test("removes the namespaces, veths and the route it made", async () => {
    const prefix = network().targetPrefix;
    assert.ok(jumpResidue().length >= 3, "the network exists before teardown");
    await teardown();
    assert.deepEqual(jumpResidue(), []);
    assert.ok(
      !execFileSync("ip", ["-4", "route", "show", "type", "unreachable"], { encoding: "utf8" }).includes(prefix),
    );
  });
});
