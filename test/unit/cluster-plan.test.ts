/**
 * The cluster's steps as plain data (modules/plan), checked without Pulumi: which machine runs what, in which
 * order, with which files; the example HA stack (kube-vip, external etcd) and the plain one.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { etcdClusterOf } from "../../modules/etcd";
import { DEFAULT_PINS } from "../../modules/pins";
import { generateClusterPki } from "../../modules/pki";
import { fileContent, isSecretFile, planClusterSteps, type PlannedClusterStep } from "../../modules/plan";
import { projectRoot } from "../../modules/project-root";
import { loadStackFile } from "../../modules/stack";

const ha = loadStackFile(join(projectRoot(), "stacks", "example-ha.yaml"));
const plain = loadStackFile(join(projectRoot(), "stacks", "example-baremetal.yaml"));
const haSteps = planClusterSteps(ha, DEFAULT_PINS, etcdClusterOf(ha));

const afterSteps = (step: PlannedClusterStep): string[] => step.after.flatMap((a) => ("step" in a ? [a.step] : []));

describe("the cluster's steps as plain data", () => {
  it("in order: init, token, control planes one at a time, workers, registrations, kube-proxy", () => {
    assert.deepEqual(
      haSteps.map((s) => `${s.machine}: ${s.id}`),
      [
        "cp-1: cp-1-kubeadm-init",
        "cp-1: cp-1-bootstrap-token",
        "cp-2: cp-2-kubeadm-join",
        "cp-1: cp-2-registration",
        "cp-3: cp-3-kubeadm-join",
        "cp-1: cp-3-registration",
        "worker-1: worker-1-kubeadm-join",
        "cp-1: worker-1-registration",
        "worker-2: worker-2-kubeadm-join",
        "cp-1: worker-2-registration",
        "cp-1: cp-1-kube-proxy",
      ],
    );
  });

  it("every step waits only for steps planned before it; what each waits for", () => {
    const seen = new Set<string>();
    for (const step of haSteps) {
      for (const id of afterSteps(step)) assert.ok(seen.has(id), `${step.id} waits for ${id}, planned later`);
      seen.add(step.id);
    }
    const after = Object.fromEntries(haSteps.map((s) => [s.id, s.after]));
    // kubeadm init waits for its machine's node steps and every external etcd member.
    assert.deepEqual(after["cp-1-kubeadm-init"], [
      { node: "cp-1" },
      { etcdMember: "etcd-1" },
      { etcdMember: "etcd-2" },
      { etcdMember: "etcd-3" },
    ]);
    // Control planes join one after the other (etcd grows one member at a time), workers after the last of them.
    assert.deepEqual(after["cp-2-kubeadm-join"], [{ node: "cp-2" }, { step: "cp-1-bootstrap-token" }]);
    assert.deepEqual(after["cp-3-kubeadm-join"], [{ node: "cp-3" }, { step: "cp-2-kubeadm-join" }]);
    assert.deepEqual(after["worker-1-kubeadm-join"], [{ node: "worker-1" }, { step: "cp-3-kubeadm-join" }]);
    assert.deepEqual(after["worker-2-kubeadm-join"], [{ node: "worker-2" }, { step: "cp-3-kubeadm-join" }]);
    assert.deepEqual(afterSteps(haSteps.at(-1)!).sort(), [
      "cp-2-registration",
      "cp-3-kubeadm-join",
      "cp-3-registration",
      "worker-1-registration",
      "worker-2-registration",
    ]);
  });

  it("files: secrets root-only, made from the secrets they name; scripts carry none", () => {
    const pki = generateClusterPki({ clusterName: "ha" });
    const secrets = { ...pki, externalEtcdCaCert: "ca", externalEtcdClientCert: "cert", externalEtcdClientKey: "key" };
    const init = haSteps[0]!;
    const byPath = Object.fromEntries(init.files.map((f) => [f.path, f]));
    assert.equal(byPath["/etc/kubernetes/pki/ca.key"]?.mode, "0600");
    assert.equal(byPath["/etc/kubernetes/pki/ca.crt"]?.mode, "0644");
    assert.equal(fileContent(byPath["/etc/kubernetes/pki/ca.key"]!, secrets), pki.caKey);
    assert.equal(byPath["/etc/kubernetes/pki/etcd/ca.key"], undefined, "external etcd: no stacked etcd CA");
    assert.equal(fileContent(byPath["/etc/kubernetes/pki/etcd-external/client.key"]!, secrets), "key");
    const config = byPath["/etc/kubernetes/nodeforge/kubeadm-init.yaml"]!;
    assert.ok(isSecretFile(config) && config.mode === "0600");
    assert.ok(fileContent(config, secrets).includes(pki.bootstrapToken));
    for (const step of haSteps) {
      for (const f of step.files) if (isSecretFile(f)) assert.equal(f.mode, "0600", f.path);
      for (const text of [step.script, step.deleteScript]) {
        for (const value of [pki.bootstrapToken, pki.caKey]) assert.ok(!text.includes(value), step.id);
      }
    }
  });

  it("a single control plane: no token step without machines to join; stacked etcd's CA written", () => {
    const alone = loadStackFile(join(projectRoot(), "stacks", "example-baremetal.yaml"));
    const steps = planClusterSteps({ ...alone, machines: alone.machines.slice(0, 1) }, DEFAULT_PINS);
    assert.deepEqual(
      steps.map((s) => s.id),
      ["cp-1-kubeadm-init", "cp-1-kube-proxy"],
    );
    assert.ok(steps[0]!.files.some((f) => f.path === "/etc/kubernetes/pki/etcd/ca.key"));
    assert.equal(planClusterSteps(plain, DEFAULT_PINS).length, 7);
  });
});
