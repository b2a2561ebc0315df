/**
 * The Pulumi program under Pulumi's mocks: which resources a 3-machine stack registers, how they nest,
 * in which order they run, and that credentials stay secrets.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { Cluster } from "../../modules/components";
import { appliedHash, machineStepProvider, type MachineStepInputs } from "../../modules/remote/machine-step";
import { STEPS } from "../../modules/steps";
import { buildStack, TEST_HOST_KEY } from "../harness/stack-builder";
import {
  captureProgram,
  isSecret,
  outputValue,
  runOf,
  STEP_TYPE,
  stepFiles,
  stepUnits,
  type CapturedResource,
  findResource,
} from "../harness/pulumi-mocks";

const DYNAMIC_TYPES = [STEP_TYPE];
const SUDO = "ssh:\n  user: ops\n  sudo: true\n  sudoPasswordConfig: sudoPassword\n";
const secrets: Record<string, string> = { sshPrivateKey: "PRIVATE-KEY-TEXT", sudoPassword: "s3cret pass" };

describe("Pulumi program on a 3-machine stack (mocks)", () => {
  let resources: CapturedResource[];
  const byName = (name: string) => findResource(resources, name);
  const commands = () => resources.filter((r) => r.type === STEP_TYPE);
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

  it("gives every machine one resource per step, named machine-step, parented to its Node", () => {
    for (const machine of ["cp-1", "worker-1", "worker-2"]) {
      const node = byName(machine);
      for (const step of STEPS) {
        const cmd = byName(`${machine}-${step.name}`);
        assert.equal(cmd.type, STEP_TYPE);
        assert.equal(cmd.parent, node.resource);
        assert.equal(runOf(cmd).name, step.name);
      }
    }
    // Plus the cluster bootstrap: kubeadm init, joins, registrations, kube-proxy (test/unit/bootstrap.test.ts).
    const bootstrap = [
      "cp-1-kubeadm-init",
      "cp-1-bootstrap-token",
      "worker-1-kubeadm-join",
      "worker-2-kubeadm-join",
      "cp-1-node-registrations",
      "cp-1-kubernetes-upgrade",
      "cp-1-certificate-renewal",
      "cp-1-cluster-network",
      // The rollout of a new version, batch by batch (nothing while every machine runs the stack's version).
      "cp-1-upgrade-drain-worker-1",
      "worker-1-kubernetes-upgrade",
      "cp-1-upgrade-uncordon-worker-1",
      "cp-1-upgrade-drain-worker-2",
      "worker-2-kubernetes-upgrade",
      "cp-1-upgrade-uncordon-worker-2",
    ];
    assert.deepEqual(
      commands()
        .map((c) => c.name)
        .filter((n) => !STEPS.some((s) => n.endsWith(`-${s.name}`)))
        .sort(),
      bootstrap.sort(),
    );
    assert.equal(commands().length, 3 * STEPS.length + bootstrap.length);
    // Nothing else: the Cluster, its PKI, the admin's certificate, its recorded facts and a Node per machine.
    assert.equal(resources.length, commands().length + 1 + 1 + 1 + 1 + 3);
  });

  it("carries each managed file in its step's files, by path", async () => {
    const containerd = await stepFiles(byName("cp-1-install-containerd"));
    const config = containerd["/etc/containerd/config.toml"]!;
    assert.equal(config.mode, "0644");
    assert.match(config.content, /SystemdCgroup = true/);
    assert.equal(config.secret, false);
    assert.ok("/etc/systemd/system/kubelet.service" in (await stepFiles(byName("worker-2-configure-kubelet"))));
  });

  it("chains each machine's steps in order, each after the one before", () => {
    for (const machine of ["cp-1", "worker-1"]) {
      for (let i = 1; i < STEPS.length; i++) {
        const previous = byName(`${machine}-${STEPS[i - 1]?.name}`).resource;
        const cmd = byName(`${machine}-${STEPS[i]?.name}`);
        assert.ok(cmd.dependsOn.includes(previous), `${cmd.name} depends on ${STEPS[i - 1]?.name}`);
      }
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
      // preflight waits for nothing on a machine: only for the cluster's recorded facts to pass their check.
      assert.deepEqual(
        byName(`${worker}-preflight`).dependsOn.map((d) => resources.find((r) => r.resource === d)?.type),
        ["pulumi-nodejs:dynamic/nodeforge:ClusterFacts"],
        "preflight starts as soon as the cluster's facts are checked",
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

  it("pins the host key on every target", async () => {
    assert.ok(commands().length > 0);
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
      for (const script of [runOf(cmd).script, runOf(cmd).deleteScript]) {
        assert.doesNotMatch(await outputValue(script as pulumi.Input<string>), /s3cret|PRIVATE-KEY/, cmd.name);
      }
      assert.equal(await isSecret(runOf(cmd).script), false, `${cmd.name}: its script is shown in previews`);
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

  it("watches each unit a step enables inside that step's resource", async () => {
    const withUnits: string[] = [];
    for (const cmd of commands()) {
      if (Object.keys(await stepUnits(cmd)).length > 0) withUnits.push(cmd.name);
    }
    assert.deepEqual(
      withUnits.sort(),
      ["cp-1", "worker-1", "worker-2"].flatMap((m) => [`${m}-configure-kubelet`, `${m}-install-containerd`]).sort(),
    );
    for (const machine of ["cp-1", "worker-1", "worker-2"]) {
      assert.deepEqual(await stepUnits(byName(`${machine}-install-containerd`)), {
        "containerd.service": { enabled: true, active: true },
      });
      // The kubelet runs only once kubeadm configured it: nodeforge checks only that it is enabled.
      assert.deepEqual(await stepUnits(byName(`${machine}-configure-kubelet`)), {
        "kubelet.service": { enabled: true },
      });
    }
  });

  it("re-runs a step in place when its files change: an update, never a replacement", async () => {
    const kubelet = byName("cp-1-configure-kubelet");
    const inputs = (await outputValue(pulumi.output(kubelet.props))) as unknown as MachineStepInputs;
    assert.match(inputs.step.deleteScript, /systemctl disable --now kubelet\.service/);
    const olds = { ...inputs, applied: appliedHash(inputs.files) };
    const path = "/etc/kubernetes/kubelet.conf.d/10-nodeforge.conf";
    const file = inputs.files[path]!;
    const news = {
      ...inputs,
      files: { ...inputs.files, [path]: { ...file, content: "maxPods: 1\n", sha256: "0".repeat(64) } },
    };
    assert.deepEqual(await machineStepProvider.diff("cp-1:configure-kubelet", olds, news), {
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
    assert.deepEqual(await machineStepProvider.diff("cp-1:configure-kubelet", olds, inputs), {
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
    // The node steps, plus kubeadm init, the bootstrap token, the worker's join and registration, kube-proxy, and the
    // upgrade steps (the control plane's and its certificate renewal; the worker's drain, its own, its uncordon).
    assert.equal(dynamic.length, 2 * STEPS.length + 10);
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
