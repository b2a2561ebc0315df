/**
 * RemoteFile's provider against a real sshd on 127.0.0.1 (the "machine" is this host, so the test checks the
 * files directly on disk), called directly and after Pulumi's closure serialization, as the engine runs it.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { parseHostKey } from "../../modules/remote/host-key";
import { MachineStep } from "../../modules/remote/machine-step";
import {
  remoteFileProvider,
  type RemoteFileInputs,
  type RemoteFileOutputs,
  type RemoteFileProvider,
} from "../../modules/remote/remote-file";
import { closeAllSessions, sessionStats } from "../../modules/remote/session";
import type { SshTarget } from "../../modules/remote/types";
import { offlineTarget } from "../harness/offline-target";
import { useSshd, type Sshd } from "../harness/sshd";

// Pooled connections must be closed before sshd stops (hooks run in registration order).
after(closeAllSessions);
const server = useSshd({ hostKeyTypes: ["ed25519", "ecdsa"] });
const work = mkdtempSync(join(tmpdir(), "nodeforge-remote-file-"));
// Inside the build tree, so the serialized provider's `require("node-ssh")` resolves from the project's
// node_modules, as it does in the engine (which loads the text with the project as working directory).
const serializedDir = mkdtempSync(join(__dirname, ".serialized-"));
after(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(serializedDir, { recursive: true, force: true });
});

const sha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex");

/** uid or gid of a name, from /etc/passwd or /etc/group. */
function idOf(database: "/etc/passwd" | "/etc/group", name: string): number {
  const line = readFileSync(database, "utf8")
    .split("\n")
    .find((entry) => entry.startsWith(`${name}:`));
  if (!line) throw new Error(`${name} is not in ${database}`);
  return Number(line.split(":")[2]);
}

function inputs(path: string, overrides: Partial<RemoteFileInputs> = {}): RemoteFileInputs {
  const target = overrides.target ?? server().target();
  return { target, path, content: "a = 1\n", mode: "0644", owner: "root", group: "root", ...overrides };
}

function acceptedLogins(sshd: Sshd): number {
  return sshd
    .log()
    .split("\n")
    .filter((line) => line.startsWith("Accepted publickey for ")).length;
}

/** sshd writes its log asynchronously; let it catch up before counting. */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 300));

/** Serializes the provider the way pulumi.dynamic.Resource does and loads it back from a .js file. */
async function loadSerializedProvider(): Promise<{ provider: RemoteFileProvider; text: string }> {
  const { text, exportName } = await pulumi.runtime.serializeFunction(() => remoteFileProvider, { allowSecrets: true });
  const file = join(mkdtempSync(join(serializedDir, "provider-")), "provider.js");
  writeFileSync(file, text);
  const factory = require(file)[exportName] as () => RemoteFileProvider;
  return { provider: factory(), text };
}

test("the serialized provider is self-contained: npm and built-in modules only", async () => {
  const { text } = await loadSerializedProvider();
  assert.match(text, /require\("node-ssh"\)/);
  assert.doesNotMatch(text, /require\("\.{1,2}\//, "local modules must be captured by value, not required");
  assert.doesNotMatch(text, /@pulumi\/pulumi/, "the provider must not drag the Pulumi SDK along");
});

for (const variant of ["direct", "serialized"] as const) {
  describe(`provider ${variant}`, () => {
    let provider: RemoteFileProvider;
    before(async () => {
      provider = variant === "direct" ? remoteFileProvider : (await loadSerializedProvider()).provider;
    });
    const path = join(work, variant, "etc", "app", "config.toml");
    const content = `# ${variant}\nname = "café"\n`;
    let id: string;
    let created: RemoteFileOutputs;

    test("create writes content, mode and owner, creating the parent directories", async () => {
      const result = await provider.create(inputs(path, { content, mode: "640", owner: "nobody", group: "nogroup" }));
      id = result.id;
      created = result.outs;
      assert.equal(id, `test-machine:${path}`);
      assert.equal(created.sha256, sha256(content));
      assert.equal(created.mode, "0640");
      assert.equal(readFileSync(path, "utf8"), content);
      const stat = statSync(path);
      assert.equal(stat.mode & 0o7777, 0o640);
      assert.equal(stat.uid, idOf("/etc/passwd", "nobody"));
      assert.equal(stat.gid, idOf("/etc/group", "nogroup"));
      assert.equal(statSync(dirname(path)).mode & 0o777, 0o755);
      assert.equal(statSync(join(work, variant, "etc")).mode & 0o777, 0o755);
    });

    test("read reports the unchanged state", async () => {
      const result = await provider.read(id, created);
      assert.equal(result.id, id);
      assert.deepEqual(result.props, created);
    });

    test("read reports content and mode edited behind its back", async () => {
      writeFileSync(path, "edited = true\n");
      chmodSync(path, 0o600);
      const result = await provider.read(id, created);
      assert.equal(result.id, id);
      assert.equal(result.props.content, "edited = true\n");
      assert.equal(result.props.mode, "0600");
      assert.equal(result.props.sha256, sha256("edited = true\n"));
      assert.equal(result.props.owner, "nobody");
      assert.equal(result.props.group, "nogroup");
      assert.equal(result.props.target?.privateKey, created.target.privateKey, "state keeps the target");
    });

    test("update puts the desired content, mode and owner back", async () => {
      const drifted = (await provider.read(id, created)).props as RemoteFileOutputs;
      const desired = inputs(path, { content: "a = 2\n", mode: "0644" });
      const diff = await provider.diff(id, drifted, desired);
      assert.equal(diff.changes, true);
      assert.deepEqual(diff.replaces, []);
      const { outs } = await provider.update(id, drifted, desired);
      assert.equal(outs.sha256, sha256("a = 2\n"));
      assert.equal(readFileSync(path, "utf8"), "a = 2\n");
      const stat = statSync(path);
      assert.equal(stat.mode & 0o7777, 0o644);
      assert.equal(stat.uid, 0);
      assert.equal(stat.gid, 0);
      created = outs;
    });

    test("delete removes the file, then read reports it gone and a second delete succeeds", async () => {
      await provider.delete(id, created);
      assert.equal(existsSync(path), false);
      const result = await provider.read(id, created);
      assert.equal(result.id, "");
      await provider.delete(id, created);
      assert.deepEqual(readdirSync(dirname(path)), []);
    });
  });
}

describe("check and diff", () => {
  const offline = offlineTarget();
  const base = inputs("/etc/app/a.conf", { target: offline });

  test("check normalises the mode and rejects bad paths, modes and names", async () => {
    const good = await remoteFileProvider.check(base, { ...base, mode: "644" });
    assert.equal(good.failures, undefined);
    assert.equal(good.inputs!.mode, "0644");
    const bad = await remoteFileProvider.check(base, {
      ...base,
      target: { ...offline, hostKey: "ssh-ed25519 AAAA" },
      path: "etc/../x",
      mode: "0999",
      owner: "bad name",
    });
    assert.deepEqual(
      bad.failures!.map((failure) => failure.property),
      ["path", "mode", "target", "owner"],
    );
    const reasons = bad.failures!.map((failure) => failure.reason).join("\n");
    assert.match(reasons, /hostKey: host key data for ssh-ed25519 is not an SSH public key/);
    assert.ok(!reasons.includes(offline.privateKey));
  });

  const olds: RemoteFileOutputs = { ...base, sha256: sha256(base.content) };
  const cases: [string, RemoteFileInputs, pulumi.dynamic.DiffResult][] = [
    ["nothing", { ...base }, { changes: false, replaces: [], deleteBeforeReplace: false }],
    [
      "mode written differently",
      { ...base, mode: "644" },
      { changes: false, replaces: [], deleteBeforeReplace: false },
    ],
    ["content", { ...base, content: "b\n" }, { changes: true, replaces: [], deleteBeforeReplace: false }],
    ["owner", { ...base, owner: "nobody" }, { changes: true, replaces: [], deleteBeforeReplace: false }],
    ["path", { ...base, path: "/etc/app/b.conf" }, { changes: true, replaces: ["path"], deleteBeforeReplace: false }],
    [
      "host",
      { ...base, target: { ...base.target, host: "10.0.0.9" } },
      { changes: true, replaces: ["target"], deleteBeforeReplace: true },
    ],
    [
      "private key only",
      { ...base, target: { ...base.target, privateKey: "rotated" } },
      { changes: true, replaces: [], deleteBeforeReplace: false },
    ],
    [
      "sudo password only",
      { ...base, target: { ...base.target, sudoPassword: "rotated" } },
      { changes: true, replaces: [], deleteBeforeReplace: false },
    ],
    [
      "retries only",
      { ...base, target: { ...base.target, retries: 5 } },
      { changes: true, replaces: [], deleteBeforeReplace: false },
    ],
    [
      "a bastion added",
      {
        ...base,
        target: {
          ...base.target,
          bastion: { host: "203.0.113.7", port: 22, user: "jump", privateKey: "k", hostKey: offline.hostKey },
        },
      },
      { changes: true, replaces: [], deleteBeforeReplace: false },
    ],
  ];
  for (const [label, news, expected] of cases) {
    test(`diff: ${label}`, async () => {
      assert.deepEqual(await remoteFileProvider.diff("id", olds, news), expected);
    });
  }

  test("a credentials-only update records the new key and writes nothing", async () => {
    const path = join(work, "rotation", "file");
    const { id, outs } = await remoteFileProvider.create(inputs(path));
    writeFileSync(path, "changed by hand\n");
    const rotated = { ...inputs(path), target: { ...outs.target, privateKey: "a key that would not work" } };
    const { outs: after } = await remoteFileProvider.update(id, outs, rotated);
    assert.equal(after.target.privateKey, "a key that would not work");
    assert.equal(after.sha256, outs.sha256);
    assert.equal(readFileSync(path, "utf8"), "changed by hand\n");
  });
});

describe("host keys", () => {
  test("a wrong pinned host key is refused with both fingerprints and nothing is written", async () => {
    const keyFile = join(work, "impostor_key");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", keyFile]);
    const wrong = readFileSync(`${keyFile}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
    const wrongFingerprint = execFileSync("ssh-keygen", ["-lf", `${keyFile}.pub`], { encoding: "utf8" }).split(" ")[1];
    const serverKeyFile = join(server().dir, "ssh_host_ed25519_key.pub");
    const serverFingerprint = execFileSync("ssh-keygen", ["-lf", serverKeyFile], { encoding: "utf8" }).split(" ")[1];
    const path = join(work, "impostor", "never-written.conf");
    await settle();
    const loginsBefore = acceptedLogins(server());

    await assert.rejects(remoteFileProvider.create(inputs(path, { target: server().target({ hostKey: wrong }) })), {
      message:
        `test-machine: write ${path}: host key mismatch for 127.0.0.1:${server().port}: ` +
        `expected ${wrongFingerprint}, presented ${serverFingerprint} (ssh-ed25519); refusing to connect`,
    });
    assert.equal(existsSync(dirname(path)), false);
    await settle();
    assert.equal(acceptedLogins(server()), loginsBefore, "no login may happen after a host key mismatch");
  });

  test("pinning the server's second (ecdsa) host key works: the server is asked for that key type", async () => {
    const path = join(work, "ecdsa-pinned");
    const target = server().target({ hostKey: server().hostKeys.ecdsa });
    assert.equal(parseHostKey(target.hostKey).type, "ecdsa-sha2-nistp256");
    await remoteFileProvider.create(inputs(path, { target }));
    assert.equal(readFileSync(path, "utf8"), "a = 1\n");
  });
});

describe("atomic writes", () => {
  test("repeated writes leave only the target in its directory", async () => {
    const path = join(work, "atomic", "only.conf");
    let outs = (await remoteFileProvider.create(inputs(path))).outs;
    for (const content of ["two\n", "three\n", ""]) {
      outs = (await remoteFileProvider.update("id", outs, inputs(path, { content }))).outs;
      assert.equal(readFileSync(path, "utf8"), content);
    }
    assert.deepEqual(readdirSync(dirname(path)), ["only.conf"]);
  });

  test("a connection dropped mid-transfer leaves the old file and no temp file", async () => {
    const dir = join(work, "dropped");
    const path = join(dir, "big.bin");
    await remoteFileProvider.create(inputs(path, { content: "old\n" }));
    const big = "x".repeat(64 * 1024 * 1024);
    const writing = remoteFileProvider.create(inputs(path, { content: big }));
    // Drop the connection as soon as the temp file exists, i.e. while content is streaming.
    const deadline = Date.now() + 10_000;
    while (readdirSync(dir).length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2));
    assert.equal(readdirSync(dir).length, 2, "the temp file should appear next to the target");
    await closeAllSessions();
    await assert.rejects(writing, new RegExp(`^Error: test-machine: write ${path}: `));
    // The remote shell notices the EOF, finds the hash wrong and its trap removes the temp file.
    const cleanDeadline = Date.now() + 5000;
    while (readdirSync(dir).length > 1 && Date.now() < cleanDeadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(readdirSync(dir), ["big.bin"]);
    assert.equal(readFileSync(path, "utf8"), "old\n");
  });
});

describe("sessions", () => {
  test("one SSH connection is reused for every operation on a machine, also concurrent ones", async () => {
    await closeAllSessions();
    await settle();
    const loginsBefore = acceptedLogins(server());
    const connectsBefore = sessionStats().connects;
    const path = join(work, "reuse", "file");
    const { id, outs } = await remoteFileProvider.create(inputs(path));
    await remoteFileProvider.read(id, outs);
    const { outs: updated } = await remoteFileProvider.update(id, outs, inputs(path, { content: "b\n" }));
    await Promise.all(
      Array.from({ length: 12 }, (_, index) =>
        remoteFileProvider.create(inputs(join(work, "reuse", `parallel-${index}`))),
      ),
    );
    await remoteFileProvider.delete(id, updated);
    assert.equal(sessionStats().connects - connectsBefore, 1);
    assert.equal(sessionStats().open, 1);
    await settle();
    assert.equal(acceptedLogins(server()) - loginsBefore, 1);
    assert.equal(readdirSync(join(work, "reuse")).length, 12);
  });

  test("connection errors name the machine, the file and what failed, without secrets", async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const listener = createServer().listen(0, "127.0.0.1", () => {
        const { port } = listener.address() as { port: number };
        listener.close(() => resolve(port));
      });
    });
    const path = join(work, "errors", "file");
    await assert.rejects(remoteFileProvider.create(inputs(path, { target: server().target({ port: closedPort }) })), {
      message: `test-machine: write ${path}: connection to 127.0.0.1:${closedPort} refused (is sshd listening there?)`,
    });

    const strangerKey = join(work, "stranger_key");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", strangerKey]);
    const privateKey = readFileSync(strangerKey, "utf8");
    // Pooled connections are keyed without the private key (rotation reuses them): start from none.
    await closeAllSessions();
    const stranger: SshTarget = server().target({ privateKey });
    const rejection = await remoteFileProvider.create(inputs(path, { target: stranger })).then(
      () => assert.fail("a key that is not authorized must not log in"),
      (error: Error) => error,
    );
    assert.equal(
      rejection.message,
      `test-machine: write ${path}: authentication as root at 127.0.0.1:${server().port} failed: ` +
        "the private key was not accepted",
    );
    const keyBody = privateKey.split("\n")[1];
    assert.ok(!rejection.message.includes(keyBody));
    assert.equal(existsSync(dirname(path)), false);
  });

  test("a server without a host key of the pinned type, a silent port and a bad private key are told apart", async () => {
    const path = join(work, "errors", "other");
    const rsaKey = join(work, "rsa_host_key");
    execFileSync("ssh-keygen", ["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", rsaKey]);
    const rsaPin = readFileSync(`${rsaKey}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
    await assert.rejects(remoteFileProvider.create(inputs(path, { target: server().target({ hostKey: rsaPin }) })), {
      message:
        `test-machine: write ${path}: 127.0.0.1:${server().port} offers no ssh-rsa host key (the pinned key's type): ` +
        "Handshake failed: no matching host key format",
    });

    // Accepts TCP connections and never says a word.
    const silent = createServer(() => undefined).listen(0, "127.0.0.1");
    await new Promise((resolve) => silent.once("listening", resolve));
    const silentPort = (silent.address() as { port: number }).port;
    const started = Date.now();
    try {
      await assert.rejects(
        remoteFileProvider.create(
          inputs(path, { target: server().target({ port: silentPort, connectTimeoutSeconds: 1 }) }),
        ),
        { message: `test-machine: write ${path}: connection to 127.0.0.1:${silentPort} timed out after 1s` },
      );
    } finally {
      silent.close();
    }
    assert.ok(Date.now() - started < 5000, "connectTimeoutSeconds bounds the wait");

    const badKey =
      "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END OPENSSH PRIVATE KEY-----\n";
    const rejection = await remoteFileProvider
      .create(inputs(path, { target: server().target({ machine: "bad-key", privateKey: badKey }) }))
      .then(
        () => assert.fail("an unparsable key must not connect"),
        (error: Error) => error,
      );
    assert.match(
      rejection.message,
      new RegExp(`^bad-key: write ${path}: the private key for 127\\.0\\.0\\.1:${server().port} cannot be used: `),
    );
    assert.ok(!rejection.message.includes("c2VjcmV0LWtleS1tYXRlcmlhbA"));
    assert.equal(existsSync(path), false);
  });
});

/** The part of the RegisterResource request the engine uses to mark outputs secret. */
interface RegisterRequest {
  getName(): string;
  getAdditionalsecretoutputsList(): string[];
}

describe("MachineStep resource (Pulumi mocks)", () => {
  const registered: pulumi.runtime.MockResourceArgs[] = [];
  const secretOutputs = new Map<string, string[]>();
  before(() => {
    pulumi.runtime.setMocks(
      {
        newResource: (args) => {
          registered.push(args);
          return { id: `${args.name}-id`, state: { ...args.inputs, sha256: "0".repeat(64) } };
        },
        call: () => ({}),
      },
      "nodeforge",
      "test",
      false,
    );
    // Mocks do not apply additionalSecretOutputs (the engine does), so record what the SDK asks the engine for.
    const monitor = pulumi.runtime.getMonitor() as unknown as {
      registerResource(request: RegisterRequest, callback: unknown): unknown;
    };
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (request, callback) => {
      secretOutputs.set(request.getName(), request.getAdditionalsecretoutputsList());
      return register(request, callback);
    };
  });
  const outputOf = <T>(output: pulumi.Output<T>): Promise<{ value: T; secret: boolean }> =>
    new Promise((resolve) =>
      output.apply(async (value) => {
        resolve({ value, secret: await pulumi.isSecret(output) });
      }),
    );

  test("registers a nodeforge MachineStep: target and secret contents secret, plain files shown", async () => {
    const meta = { mode: "0644", owner: "root", group: "root" };
    const step = new MachineStep("step", {
      target: server().target(),
      step: "probe",
      files: [
        { path: "/etc/app.conf", content: "visible\n", ...meta },
        { path: "/etc/app.token", content: "token\n", ...meta, mode: "0600", secret: true },
      ],
      script: "true",
    });
    const files = await outputOf(step.files);
    assert.equal(files.secret, false, "a preview shows which file changes");
    assert.deepEqual(files.value, {
      "/etc/app.conf": {
        ...meta,
        sha256: createHash("sha256").update("visible\n").digest("hex"),
        content: "visible\n",
      },
      "/etc/app.token": { ...meta, mode: "0600", sha256: createHash("sha256").update("token\n").digest("hex") },
    });
    assert.equal((await outputOf(step.target)).secret, true);
    assert.deepEqual(secretOutputs.get("step"), ["target", "secretContents"]);
    assert.deepEqual(
      registered.map((resource) => resource.type),
      ["pulumi-nodejs:dynamic/nodeforge:MachineStep"],
    );
    // The engine receives the contents wrapped as a secret (Pulumi's secret signature), the files map as is.
    const inputs = registered[0]!.inputs as { secretContents: unknown; files: unknown };
    assert.deepEqual(inputs.secretContents, {
      [pulumi.runtime.specialSigKey]: pulumi.runtime.specialSecretSig,
      value: { "/etc/app.token": "token\n" },
    });
  });
});
