/**
 * The dynamic providers as the engine runs them: serialized by Pulumi's closure serializer, loaded, and called.
 * The serializer rewrites classes (`super(message)` becomes `Error.call(this, message)`), which once turned every
 * SSH error a user would see into "undefined"; here each provider's error for a refused connection is checked
 * word for word after serialization.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { providerReference } from "../../modules/provider-reference";
import { machineStepProvider } from "../../modules/remote/machine-step";
import { remoteFileProvider } from "../../modules/remote/remote-file";
import { remoteScriptProvider } from "../../modules/remote/remote-script";
import { unitStateProvider } from "../../modules/remote/unit-state";
import type { SshTarget } from "../../modules/remote/types";
import { closedPort } from "../harness/offline-target";

const work = mkdtempSync(join(tmpdir(), "nodeforge-serialized-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** The serializer's text for `provider`, as a resource's `__provider` input carries it. */
async function serializedText(provider: unknown): Promise<{ text: string; exportName: string }> {
  return pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
}

/** Loads a provider the way the dynamic-provider host does: from the serializer's text. */
function load<T>({ text, exportName }: { text: string; exportName: string }): T {
  // Inside the package, so that require("node-ssh") resolves as it does for the engine.
  const dir = mkdtempSync(join(__dirname, ".serialized-"));
  try {
    const file = join(dir, "provider.js");
    writeFileSync(file, text);
    return (require(file) as Record<string, () => T>)[exportName]!();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function serialized<T>(provider: T): Promise<T> {
  return load<T>(await serializedText(provider));
}

describe("providers after closure serialization", () => {
  let target: SshTarget;
  let port: number;
  /** The whole message: `where`, then the refused connection after its one retry (0.5 s backoff). */
  const refused = (where: string): RegExp =>
    new RegExp(
      `^${where.replace(/[.]/g, "\\.")}: connection to 127\\.0\\.0\\.1:${port} refused \\(is sshd listening there\\?\\) ` +
        "\\(2 attempts over [0-9]\\.[0-9]s\\)$",
    );
  before(async () => {
    const key = join(work, "id_ed25519");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
    const hostKey = readFileSync(`${key}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
    port = await closedPort();
    const base = { machine: "cp-1", host: "127.0.0.1", port, user: "root", sudo: false };
    target = { ...base, privateKey: readFileSync(key, "utf8"), hostKey, connectTimeoutSeconds: 2, retries: 1 };
  });

  test("RemoteFile: the machine, the file, and what failed", async () => {
    const provider = await serialized(remoteFileProvider);
    const file = { target, path: "/etc/x.conf", content: "x\n", mode: "0644", owner: "root", group: "root" };
    await assert.rejects(provider.create(file), { message: refused("cp-1: write /etc/x.conf") });
  });

  test("RemoteScript: the machine, the step, and what failed", async () => {
    const provider = await serialized(remoteScriptProvider);
    const inputs = { target, step: "install-containerd", script: "true", deleteScript: "", triggers: [] };
    await assert.rejects(provider.create(inputs), { message: refused("cp-1: install-containerd") });
  });

  test("UnitState: the machine, the step, the unit, and what failed", async () => {
    const provider = await serialized(unitStateProvider);
    const inputs = { target, step: "install-containerd", unit: "containerd.service", enabled: true };
    await assert.rejects(provider.create(inputs), {
      message: refused("cp-1: install-containerd: containerd.service: enable"),
    });
  });

  test("MachineStep: the machine, the file it was writing, and what failed; its script's step", async () => {
    const provider = await serialized(machineStepProvider);
    const file = { mode: "0644", owner: "root", group: "root", sha256: "", content: "x\n" };
    const step = { name: "install-containerd", script: "true", deleteScript: "", triggers: [] };
    await assert.rejects(provider.create({ target, step, files: { "/etc/x.conf": file } }), {
      message: refused("cp-1: write /etc/x.conf"),
    });
    await assert.rejects(provider.create({ target, step, files: {} }), {
      message: refused("cp-1: install-containerd"),
    });
  });

  test("MachineStep as resources carry it: a reference of a few KB that runs the built provider", async () => {
    const reference = providerReference(machineStepProvider, "machineStepProvider");
    const closure = await serializedText(reference);
    // Before: about 70 KB of nodeforge's code in every step resource's state.
    assert.ok(closure.text.length < 4096, `${closure.text.length} bytes`);
    assert.doesNotMatch(closure.text, /runRemote|hostKeyVerification/);
    const provider = load<typeof machineStepProvider>(closure);
    assert.deepEqual(Object.keys(provider).sort(), Object.keys(machineStepProvider).sort());
    const step = { name: "install-containerd", script: "true", deleteScript: "", triggers: [] };
    await assert.rejects(provider.create({ target, step, files: {} }), {
      message: refused("cp-1: install-containerd"),
    });
  });
});
