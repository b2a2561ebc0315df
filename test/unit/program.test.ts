/**
 * The Pulumi program under Pulumi's mocks: which resources a 3-machine stack registers, how they nest,
 * in which order they run, and that credentials stay secrets.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { Cluster } from "../../modules/components";
import { remoteScriptProvider, type RemoteScriptInputs } from "../../modules/remote";
import { STEPS } from "../../modules/steps";
import { buildStack, TEST_HOST_KEY } from "../harness/stack-builder";
import { captureProgram, isSecret, outputValue, type CapturedResource, findResource } from "../harness/pulumi-mocks";

const FILE_TYPE = "pulumi-nodejs:dynamic/nodeforge:RemoteFile";
const UNIT_TYPE = "pulumi-nodejs:dynamic/nodeforge:UnitState";
const SCRIPT_TYPE = "pulumi-nodejs:dynamic/nodeforge:RemoteScript";
const DYNAMIC_TYPES = [FILE_TYPE, UNIT_TYPE, SCRIPT_TYPE];
const SUDO = "ssh:\n  user: ops\n  sudo: true\n  sudoPasswordConfig: sudoPassword\n";
const secrets: Record<string, string> = { sshPrivateKey: "PRIVATE-KEY-TEXT", sudoPassword: "s3cret pass" };

describe("Pulumi program on a 3-machine stack (mocks)", () => {
  let resources: CapturedResource[];
  const byName = (name: string) => findResource(resources, name);
  const commands = () => resources.filter((r) => r.type === SCRIPT_TYPE);
  const dynamic = () => resources.filter((r) => DYNAMIC_TYPES.includes(r.type));

  before(async () => {
    const stack = buildStack({ machines: 3, extra: SUDO });
    resources = await captureProgram((transformations) => {
      new Cluster("test", { stack, secret: (key) => pulumi.secret(secrets[key] ?? "") }, { transformations });
    });
  });

  it("registers one Node per machine under the Cluster component", () => {
    const cluster = byName("test");
    assert.equal(cluster.type, "nodeforge:cluster:Cluster");
    const nodes = resources.filter((r) => r.type === "nodeforge:node:Node");
    assert.deepEqual(nodes.map((n) => n.name).sort(), ["cp-1", "worker-1", "worker-2"]);
    for (const node of nodes) assert.equal(node.parent, cluster.resource);
  });

  it("gives every machine one script per step, named machine-step, parented to its Node", () => {
    for (const machine of ["cp-1", "worker-1", "worker-2"]) {
      const node = byName(machine);
      for (const step of STEPS) {
        const cmd = byName(`${machine}-${step.name}`);
        assert.equal(cmd.type, SCRIPT_TYPE);
        assert.equal(cmd.parent, node.resource);
        assert.equal(cmd.props.step, step.name);
      }
    }
    // Plus the cluster bootstrap: kubeadm init, joins, registrations, kube-proxy (test/unit/bootstrap.test.ts).
    const bootstrap = [
      "cp-1-kubeadm-init",
      "cp-1-bootstrap-token",
      "worker-1-kubeadm-join",
      "worker-2-kubeadm-join",
      "worker-1-registration",
      "worker-2-registration",
      "cp-1-kube-proxy",
    ];
    assert.deepEqual(
      commands()
        .map((c) => c.name)
        .filter((n) => !STEPS.some((s) => n.endsWith(`-${s.name}`)))
        .sort(),
      bootstrap.sort(),
    );
    assert.equal(commands().length, 3 * STEPS.length + bootstrap.length);
  });

  it("writes each managed file with a RemoteFile dynamic resource named after its path", () => {
    const file = byName("cp-1-install-containerd-etc-containerd-config.toml");
    assert.equal(file.type, FILE_TYPE);
    assert.equal(file.parent, byName("cp-1").resource);
    assert.equal(file.props.path, "/etc/containerd/config.toml");
    assert.equal(file.props.mode, "0644");
    assert.match(String(file.props.content), /SystemdCgroup = true/);
    const unit = byName("worker-2-configure-kubelet-etc-systemd-system-kubelet.service");
    assert.equal(unit.props.path, "/etc/systemd/system/kubelet.service");
  });

  it("chains each machine's steps in order: files after the previous step, the command after its files", () => {
    for (const machine of ["cp-1", "worker-1"]) {
      for (let i = 1; i < STEPS.length; i++) {
        const previous = byName(`${machine}-${STEPS[i - 1]?.name}`).resource;
        const cmd = byName(`${machine}-${STEPS[i]?.name}`);
        assert.ok(cmd.dependsOn.includes(previous), `${cmd.name} depends on ${STEPS[i - 1]?.name}`);
      }
      const config = byName(`${machine}-install-containerd-etc-containerd-config.toml`);
      assert.ok(byName(`${machine}-install-containerd`).dependsOn.includes(config.resource));
      assert.ok(config.dependsOn.includes(byName(`${machine}-preflight`).resource));
    }
  });

  it("runs worker steps that join the cluster after every control-plane step, the rest in parallel", () => {
    const cpLast = byName(`cp-1-${STEPS[STEPS.length - 1]?.name}`).resource;
    for (const worker of ["worker-1", "worker-2"]) {
      for (const step of STEPS) {
        const cmd = byName(`${worker}-${step.name}`);
        assert.equal(
          cmd.dependsOn.includes(cpLast),
          step.waitsForControlPlane,
          `${cmd.name} waits: ${step.waitsForControlPlane}`,
        );
      }
      const preflightWaitsFor = byName(`${worker}-preflight`).dependsOn.map((d) =>
        resources.find((r) => r.resource === d),
      );
      assert.ok(
        preflightWaitsFor.every((r) => r?.type === FILE_TYPE && r.name.startsWith(`${worker}-preflight-`)),
        "preflight waits only for its own files, so it starts at once",
      );
    }
    assert.ok(
      STEPS.some((s) => s.waitsForControlPlane),
      "some step waits for the control plane",
    );
    for (const step of STEPS) {
      assert.ok(
        !byName(`cp-1-${step.name}`).dependsOn.some((d) =>
          commands().some((c) => c.resource === d && c.name.startsWith("worker")),
        ),
      );
    }
  });

  it("pins the host key on every target: scripts, files and units", async () => {
    assert.ok(commands().length > 0 && dynamic().length > commands().length);
    for (const resource of dynamic()) {
      const target = await outputValue(resource.props.target as pulumi.Input<Record<string, unknown>>);
      assert.equal(target.hostKey, TEST_HOST_KEY, `${resource.name} pins the host key`);
    }
  });

  it("carries the private key and the sudo password only in the secret target, never in a script", async () => {
    for (const resource of dynamic()) {
      assert.equal(await isSecret(resource.props.target), true, `${resource.name} target is secret`);
      const target = await outputValue(resource.props.target as pulumi.Input<Record<string, unknown>>);
      assert.deepEqual([target.privateKey, target.sudoPassword], ["PRIVATE-KEY-TEXT", "s3cret pass"]);
    }
    for (const cmd of commands()) {
      for (const script of [cmd.props.script, cmd.props.deleteScript]) {
        assert.doesNotMatch(await outputValue(script as pulumi.Input<string>), /s3cret|PRIVATE-KEY/, cmd.name);
      }
      assert.equal(await isSecret(cmd.props.script), false, `${cmd.name}: its script is shown in previews`);
    }
  });

  it("connects like the stack says: per-attempt timeout, retries, no bastion without one", async () => {
    for (const resource of dynamic()) {
      const target = await outputValue(resource.props.target as pulumi.Input<Record<string, unknown>>);
      assert.equal(target.retries, 3, `${resource.name} retries`);
      assert.equal(target.connectTimeoutSeconds, 15);
      assert.equal(target.user, "ops");
      assert.equal(target.sudo, true);
      assert.equal("bastion" in target, false);
    }
  });

  it("watches each unit a step enables with a UnitState created after that step's command", async () => {
    const units = resources.filter((r) => r.type === UNIT_TYPE);
    assert.deepEqual(
      units.map((u) => u.name).sort(),
      ["cp-1", "worker-1", "worker-2"]
        .flatMap((m) => [
          `${m}-install-containerd-unit-containerd.service`,
          `${m}-configure-kubelet-unit-kubelet.service`,
        ])
        .sort(),
    );
    for (const machine of ["cp-1", "worker-1", "worker-2"]) {
      const containerd = byName(`${machine}-install-containerd-unit-containerd.service`);
      assert.equal(containerd.parent, byName(machine).resource);
      assert.deepEqual(containerd.dependsOn, [byName(`${machine}-install-containerd`).resource]);
      assert.equal(containerd.props.unit, "containerd.service");
      assert.equal(containerd.props.step, "install-containerd");
      assert.equal(containerd.props.enabled, true);
      assert.equal(containerd.props.active, true, "containerd must be running too");
      assert.equal(await isSecret(containerd.props.target), true, "the target (keys, password) is secret");
      const target = await outputValue(containerd.props.target as pulumi.Input<Record<string, unknown>>);
      assert.equal(target.hostKey, TEST_HOST_KEY);
      const kubelet = byName(`${machine}-configure-kubelet-unit-kubelet.service`);
      assert.deepEqual(kubelet.dependsOn, [byName(`${machine}-configure-kubelet`).resource]);
      assert.equal(kubelet.props.enabled, true);
      assert.equal(kubelet.props.active, undefined, "the kubelet runs only once kubeadm configured it");
    }
    // Nothing waits for a UnitState: the next step follows the command, as before.
    for (const resource of resources) {
      assert.ok(!resource.dependsOn.some((d) => units.some((u) => u.resource === d)), `${resource.name}`);
    }
  });

  it("re-runs a step in place when its files change: a changed trigger is an update, never a replacement", async () => {
    for (const cmd of commands()) {
      const triggers = cmd.props.triggers as pulumi.Input<string>[];
      assert.equal(triggers.length, 1);
      assert.match(await outputValue(triggers[0] ?? ""), /^[0-9a-f]{64}$/);
    }
    const kubelet = byName("cp-1-configure-kubelet");
    const olds = (await outputValue(pulumi.output(kubelet.props))) as unknown as RemoteScriptInputs;
    assert.match(olds.deleteScript, /systemctl disable --now kubelet\.service/);
    const news = { ...olds, triggers: ["0".repeat(64)] };
    assert.deepEqual(await remoteScriptProvider.diff("cp-1:configure-kubelet", olds, news), {
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
    assert.deepEqual(await remoteScriptProvider.diff("cp-1:configure-kubelet", olds, olds), {
      changes: false,
      replaces: [],
      deleteBeforeReplace: false,
    });
  });
});

describe("Pulumi program with a bastion (mocks)", () => {
  const BASTION_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK3vJEmTrUt6Y+2pBpfHXAl3qpPP9ETGc5JOc7g3J9y4";
  const JUMP = [
    "ssh:",
    "  connectTimeoutSeconds: 7",
    "  retries: 2",
    "  bastion:",
    "    address: 203.0.113.7",
    "    port: 2200",
    "    user: jump",
    `    hostKey: ${BASTION_KEY}`,
    "    privateKeyConfig: bastionKey",
  ].join("\n");
  const keys: Record<string, string> = { sshPrivateKey: "MACHINE-KEY", bastionKey: "BASTION-KEY" };
  let resources: CapturedResource[];

  before(async () => {
    const stack = buildStack({ machines: 2, extra: JUMP });
    resources = await captureProgram((transformations) => {
      new Cluster("jump", { stack, secret: (key) => pulumi.secret(keys[key] ?? "") }, { transformations });
    });
  });

  it("gives every target the bastion, its host key pinned and its key secret", async () => {
    const dynamic = resources.filter((r) => DYNAMIC_TYPES.includes(r.type));
    // The node steps, plus kubeadm init, the bootstrap token, the worker's join and registration, kube-proxy.
    assert.equal(dynamic.filter((r) => r.type === SCRIPT_TYPE).length, 2 * STEPS.length + 5);
    for (const resource of dynamic) {
      const target = await outputValue(resource.props.target as pulumi.Input<Record<string, unknown>>);
      assert.deepEqual(target.bastion, {
        host: "203.0.113.7",
        port: 2200,
        user: "jump",
        privateKey: "BASTION-KEY",
        hostKey: BASTION_KEY,
      });
      assert.equal(target.retries, 2);
      assert.equal(target.connectTimeoutSeconds, 7);
      assert.equal(await isSecret(resource.props.target), true);
    }
  });
});
