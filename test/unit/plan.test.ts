/** What changes on a machine when one value in the stack file changes: only the affected files and steps. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { STEPS } from "../../modules/steps";
import { planMachine, type PlannedNodeStep } from "../../modules/steps/plan";
import { parse as parseToml } from "smol-toml";
import { buildStack } from "../harness/stack-builder";

function plan(extra = "", kubernetesVersion?: string): Map<string, PlannedNodeStep> {
  const stack = buildStack({ machines: 2, extra, kubernetesVersion });
  const machine = stack.machines[1];
  assert.ok(machine);
  return new Map(planMachine(stack, machine).map((p) => [p.step.name, p]));
}

function changedSteps(a: Map<string, PlannedNodeStep>, b: Map<string, PlannedNodeStep>): string[] {
  return [...a.keys()].filter(
    (name) => a.get(name)?.filesHash !== b.get(name)?.filesHash || a.get(name)?.script !== b.get(name)?.script,
  );
}

function changedFiles(a: Map<string, PlannedNodeStep>, b: Map<string, PlannedNodeStep>): string[] {
  const contents = (m: Map<string, PlannedNodeStep>) =>
    new Map([...m.values()].flatMap((p) => p.files.map((f) => [f.path, f.content])));
  const before = contents(a);
  const after = contents(b);
  return [...new Set([...before.keys(), ...after.keys()])]
    .filter((path) => before.get(path) !== after.get(path))
    .sort();
}

describe("planMachine", () => {
  it("plans every step, in order, each with a delete script for destroy", () => {
    const steps = [...plan().values()];
    assert.deepEqual(
      steps.map((p) => p.step.name),
      STEPS.map((s) => s.name),
    );
    for (const p of steps) assert.ok(p.deleteScript, `${p.step.name} has a delete script`);
  });

  it("is deterministic: the same stack plans byte-identical files and scripts", () => {
    assert.deepEqual(changedSteps(plan(), plan()), []);
  });

  it("a kubelet setting changes only the kubelet drop-in and the configure-kubelet step", () => {
    const before = plan();
    const after = plan("kubelet:\n  maxPods: 50\n");
    assert.deepEqual(changedSteps(before, after), ["configure-kubelet"]);
    assert.deepEqual(changedFiles(before, after), ["/etc/kubernetes/kubelet.conf.d/10-nodeforge.conf"]);
    assert.match(after.get("configure-kubelet")?.files[2]?.content ?? "", /^maxPods: 50$/m);
  });

  it("a registry mirror adds one hosts.toml and re-runs only install-containerd", () => {
    const before = plan();
    const after = plan('containerd:\n  registryMirrors:\n    docker.io: ["http://10.0.0.1:5000"]\n');
    assert.deepEqual(changedSteps(before, after), ["install-containerd"]);
    assert.deepEqual(changedFiles(before, after), ["/etc/containerd/certs.d/docker.io/hosts.toml"]);
  });

  it("a Kubernetes upgrade changes the binaries' URLs and checksums and the pinned pause image", () => {
    const before = plan("", "1.35.8");
    const after = plan("", "1.36.3");
    assert.deepEqual(changedSteps(before, after), ["install-containerd", "install-kubelet"]);
    assert.match(after.get("install-kubelet")?.script ?? "", /\/v1\.36\.3\/bin\/linux\/amd64\/kubelet /);
    assert.doesNotMatch(after.get("install-kubelet")?.script ?? "", /1\.35\.8/);
    assert.deepEqual(changedFiles(before, after), ["/etc/containerd/config.toml"]);
  });

  it("the script of a step carries its files' hash, so the files changing re-runs it and restarts the unit", () => {
    const before = plan();
    const after = plan("kubelet:\n  maxPods: 50\n");
    const hash = after.get("configure-kubelet")?.filesHash ?? "";
    assert.match(after.get("configure-kubelet")?.script ?? "", new RegExp(`nf_changed kubelet ${hash}`));
    assert.notEqual(before.get("configure-kubelet")?.filesHash, hash);
  });
});

describe("artifacts.sha256: checksums of the mirror's own builds", () => {
  const own = { kubelet: "1".repeat(64), kubeadm: "2".repeat(64), kubectl: "3".repeat(64), crictl: "4".repeat(64) };
  const block = `artifacts:\n  sha256:\n    amd64:\n${Object.entries(own)
    .map(([binary, sum]) => `      ${binary}: "${sum}"`)
    .join("\n")}\n`;

  it("replace the pinned checksums in the install step, and only for that arch", () => {
    const pinned = plan().get("install-kubelet")?.script ?? "";
    const script = plan(block).get("install-kubelet")?.script ?? "";
    for (const sum of Object.values(own)) {
      assert.ok(script.includes(sum), `${sum.slice(0, 4)}... is checked`);
      assert.ok(!pinned.includes(sum));
    }
    assert.equal(changedSteps(plan(), plan(block)).join(), "install-kubelet");
    const arm = plan(block.replace("amd64:", "arm64:")).get("install-kubelet")?.script ?? "";
    assert.equal(arm, pinned, "checksums for another arch leave an amd64 machine's step as pinned");
  });
});

describe("kubelet.failCgroupV1", () => {
  it("false writes failCgroupV1: false into the kubelet drop-in, and nothing else changes", () => {
    const before = plan();
    const after = plan("kubelet:\n  failCgroupV1: false\n");
    assert.deepEqual(changedFiles(before, after), ["/etc/kubernetes/kubelet.conf.d/10-nodeforge.conf"]);
    const dropIn = (p: Map<string, PlannedNodeStep>) =>
      p.get("configure-kubelet")?.files.find((f) => f.path.endsWith("10-nodeforge.conf"))?.content ?? "";
    assert.match(dropIn(after), /^failCgroupV1: false$/m);
    assert.doesNotMatch(dropIn(before), /failCgroupV1/, "the kubelet's own default (true) is left to it");
  });
});

describe("containerd.restrictOOMScoreAdj", () => {
  it("true sets the CRI runtime plugin's restrict_oom_score_adj, in config.toml only", () => {
    const before = plan();
    const after = plan("containerd:\n  restrictOOMScoreAdj: true\n");
    assert.deepEqual(changedFiles(before, after), ["/etc/containerd/config.toml"]);
    const config = (p: Map<string, PlannedNodeStep>) =>
      parseToml(
        p.get("install-containerd")?.files.find((f) => f.path === "/etc/containerd/config.toml")?.content ?? "",
      );
    const cri = (p: Map<string, PlannedNodeStep>) =>
      ((config(p).plugins as Record<string, unknown>)["io.containerd.cri.v1.runtime"] ?? {}) as Record<string, unknown>;
    assert.equal(cri(after).restrict_oom_score_adj, true);
    assert.equal("restrict_oom_score_adj" in cri(before), false);
  });
});
