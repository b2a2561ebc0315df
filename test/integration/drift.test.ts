/**
 * Drift on a real systemd machine (a systemd-nspawn container from test/harness/machines.ts, with containerd
 * installed from the local apt mirror): a managed file edited and a unit disabled behind nodeforge's back. The
 * providers are used as the engine gets them (after closure serialization): `read` is what `pulumi refresh`
 * calls, `diff` on the refreshed state is what the next `pulumi up` decides on, `update` puts things back.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { remoteFileProvider, type RemoteFileInputs, type RemoteFileProvider } from "../../modules/remote/remote-file";
import { closeAllSessions } from "../../modules/remote/session";
import {
  unitStateProvider,
  type UnitStateInputs,
  type UnitStateOutputs,
  type UnitStateProvider,
} from "../../modules/remote/unit-state";
import { startMachines, type Lab, type Machine } from "../harness/machines";

let started: Lab | undefined;
const lab = (): Lab => started ?? assert.fail("the machine did not start");
// Inside the build tree, so a serialized provider's `require("node-ssh")` resolves as it does in the engine.
const serializedDir = mkdtempSync(join(__dirname, ".serialized-drift-"));
after(async () => {
  await closeAllSessions();
  await started?.stop();
  rmSync(serializedDir, { recursive: true, force: true });
});

async function serialized<T>(provider: T): Promise<{ provider: T; text: string }> {
  const { text, exportName } = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
  const file = join(mkdtempSync(join(serializedDir, "provider-")), "provider.js");
  writeFileSync(file, text);
  return { provider: (require(file)[exportName] as () => T)(), text };
}

let files: RemoteFileProvider;
let units: UnitStateProvider;
let machine: Machine;
// One hook, in order: Node 20 runs a file's top-level before hooks concurrently.
before(async () => {
  started = await startMachines(1);
  machine = lab().machines[0]!;
  files = (await serialized(remoteFileProvider)).provider;
  const unitProvider = await serialized(unitStateProvider);
  units = unitProvider.provider;
  assert.doesNotMatch(unitProvider.text, /require\("\.{1,2}\//, "local modules are captured by value");
  assert.doesNotMatch(unitProvider.text, /@pulumi\/pulumi/, "the provider does not drag the Pulumi SDK along");
  const installed = await machine.run(
    "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq containerd >/dev/null",
  );
  assert.equal(installed.code, 0, installed.stderr);
});

async function sh(command: string): Promise<string> {
  const result = await machine.run(command);
  assert.equal(result.code, 0, `${command}: ${result.stderr}`);
  return result.stdout;
}

function containerd(overrides: Partial<UnitStateInputs> = {}): UnitStateInputs {
  return {
    target: lab().target(machine),
    step: "install-containerd",
    unit: "containerd.service",
    enabled: true,
    active: true,
    ...overrides,
  };
}

describe("UnitState on real systemd", () => {
  let id: string;
  let recorded: UnitStateOutputs;

  test("create records containerd as enabled and active", async () => {
    const created = await units.create(containerd());
    id = created.id;
    recorded = created.outs;
    assert.equal(id, `${machine.name}:containerd.service`);
    assert.deepEqual(
      [recorded.enabled, recorded.active, recorded.isEnabled, recorded.isActive],
      [true, true, "enabled", "active"],
    );
  });

  test("read reports no drift while nothing changed", async () => {
    const { props } = await units.read(id, recorded);
    assert.deepEqual(props, recorded);
    assert.deepEqual(await units.diff(id, props, containerd()), {
      changes: false,
      replaces: [],
      deleteBeforeReplace: false,
    });
  });

  test("disabled and stopped behind nodeforge's back: refresh shows it, the next up enables and starts it", async () => {
    await sh("systemctl disable --now containerd.service 2>/dev/null");
    const { props } = await units.read(id, recorded);
    assert.deepEqual(
      [props.enabled, props.active, props.isEnabled, props.isActive],
      [false, false, "disabled", "inactive"],
    );
    // What `pulumi refresh` shows: the recorded outputs against the read ones.
    console.log(`refresh diff: ${JSON.stringify(changedFields(recorded, props))}`);
    const diff = await units.diff(id, props, containerd());
    assert.equal(diff.changes, true);
    assert.deepEqual(diff.replaces, []);
    const { outs } = await units.update(id, props, containerd());
    assert.deepEqual([outs.enabled, outs.active, outs.isEnabled, outs.isActive], [true, true, "enabled", "active"]);
    assert.equal(
      await sh("systemctl is-enabled containerd.service; systemctl is-active containerd.service"),
      "enabled\nactive\n",
    );
    recorded = outs;
  });

  test("a unit whose running state is not managed (like the kubelet) drifts only when disabled", async () => {
    const watchEnabledOnly = containerd({ active: undefined });
    delete watchEnabledOnly.active;
    const { outs } = await units.create(watchEnabledOnly);
    assert.equal("active" in outs, false);
    await sh("systemctl stop containerd.service");
    const stopped = await units.read(id, outs);
    assert.equal("active" in stopped.props, false);
    assert.equal((await units.diff(id, stopped.props, watchEnabledOnly)).changes, false, "stopped is not drift");
    await sh("systemctl disable containerd.service 2>/dev/null");
    const disabled = await units.read(id, outs);
    assert.equal(disabled.props.enabled, false);
    assert.equal((await units.diff(id, disabled.props, watchEnabledOnly)).changes, true);
    await units.update(id, disabled.props, watchEnabledOnly);
    assert.equal(await sh("systemctl is-enabled containerd.service"), "enabled\n");
    await sh("systemctl start containerd.service");
  });

  test("a masked unit cannot be enabled: the error names the machine, the step and the unit", async () => {
    await sh("systemctl disable containerd.service 2>/dev/null; systemctl mask containerd.service 2>/dev/null");
    try {
      const { props } = await units.read(id, recorded);
      assert.equal(props.isEnabled, "masked");
      await assert.rejects(units.update(id, props, containerd()), {
        message:
          `${machine.name}: install-containerd: containerd.service: enable: exited 1: ` +
          "Failed to enable unit: Unit file /etc/systemd/system/containerd.service is masked.",
      });
    } finally {
      await sh(
        "systemctl unmask containerd.service 2>/dev/null; systemctl enable --now containerd.service 2>/dev/null",
      );
    }
  });

  test("check rejects a name that is not a unit, and a bad pinned host key", async () => {
    const bad = { ...containerd({ unit: "containerd; reboot" }) };
    bad.target = { ...bad.target, hostKey: "ssh-ed25519 AAAA" };
    const checked = await units.check(containerd(), bad);
    assert.deepEqual(
      checked.failures?.map((f) => f.property),
      ["target", "unit"],
    );
  });
});

describe("RemoteFile drift on the same machine", () => {
  test("content, mode and owner edited behind nodeforge's back: read reports them, update puts them back", async () => {
    const path = "/etc/containerd/nodeforge-drift.toml";
    const inputs: RemoteFileInputs = {
      target: lab().target(machine),
      path,
      content: 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "registry.k8s.io/pause:3.10"\n',
      mode: "0644",
      owner: "root",
      group: "root",
    };
    const { id, outs } = await files.create(inputs);
    await sh(`sed -i 's/3.10/3.9/' ${path} && chmod 0666 ${path} && chown nobody:nogroup ${path}`);
    const { props } = await files.read(id, outs);
    assert.equal(props.content, inputs.content.replace("3.10", "3.9"));
    assert.deepEqual([props.mode, props.owner, props.group], ["0666", "nobody", "nogroup"]);
    console.log(`refresh diff: ${JSON.stringify(changedFields(outs, props))}`);
    assert.equal((await files.diff(id, props as never, inputs)).changes, true);
    await files.update(id, props as never, inputs);
    assert.equal(await sh(`stat -c '%a %U %G' ${path}; cat ${path}`), `644 root root\n${inputs.content}`);
  });
});

/** The fields that differ between the recorded state and what read found, as `pulumi refresh` would list them. */
function changedFields(recorded: object, found: object): Record<string, [unknown, unknown]> {
  const changed: Record<string, [unknown, unknown]> = {};
  const before = recorded as Record<string, unknown>;
  const after = found as Record<string, unknown>;
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (key === "target") continue;
    if (JSON.stringify(before[key]) !== JSON.stringify(after[key])) changed[key] = [before[key], after[key]];
  }
  return changed;
}
