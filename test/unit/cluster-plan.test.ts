/**
 * The whole plan as plain data (modules/plan), checked without Pulumi: which machine runs what, in which order,
 * with which files; the example HA stack (kube-vip, external etcd) and the plain one.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { generateClusterPki, generateEtcdPki } from "../../modules/pki";
import { fileContent, isSecretFile, planCluster, scriptText, type ClusterSecrets } from "../../modules/plan";
import { projectRoot } from "../../modules/project-root";
import { loadStackFile } from "../../modules/stack";

const ha = loadStackFile(join(projectRoot(), "stacks", "example-ha.yaml"));
const plain = loadStackFile(join(projectRoot(), "stacks", "example-baremetal.yaml"));
const haPlan = planCluster(ha);
const NODE_STEPS = ["preflight", "install-containerd", "install-kubelet", "configure-kubelet"];
const CLUSTER_STEPS = new Set([
  "kubeadm-init",
  "bootstrap-token",
  "kubeadm-join",
  "node-registrations",
  "cluster-network",
]);

function secretsFor(): ClusterSecrets {
  const pki = generateClusterPki({ clusterName: "ha" });
  const etcd = generateEtcdPki({
    clusterName: "ha",
    members: ha.etcd!.external.machines.map((m) => ({ name: m.name, address: m.address })),
  });
  return {
    ...pki,
    externalEtcdCaCert: etcd.caCert,
    externalEtcdClientCert: etcd.clientCert,
    externalEtcdClientKey: etcd.clientKey,
    externalEtcdMembers: { memberCerts: etcd.memberCerts, memberKeys: etcd.memberKeys },
    vms: {},
  };
}

describe("the plan as plain data", () => {
  it("every machine's steps: etcd members, node steps, then the cluster's in their order", () => {
    assert.deepEqual(
      haPlan.filter((s) => s.step === "etcd-member").map((s) => s.id),
      ["etcd-1-etcd-member", "etcd-2-etcd-member", "etcd-3-etcd-member"],
    );
    for (const machine of ha.machines) {
      assert.deepEqual(
        haPlan.filter((s) => s.machine === machine.name && NODE_STEPS.includes(s.step)).map((s) => s.id),
        NODE_STEPS.map((step) => `${machine.name}-${step}`),
      );
    }
    assert.deepEqual(
      haPlan.filter((s) => CLUSTER_STEPS.has(s.step)).map((s) => `${s.machine}: ${s.id}`),
      [
        "cp-1: cp-1-kubeadm-init",
        "cp-1: cp-1-bootstrap-token",
        "cp-2: cp-2-kubeadm-join",
        "cp-3: cp-3-kubeadm-join",
        "worker-1: worker-1-kubeadm-join",
        "worker-2: worker-2-kubeadm-join",
        "cp-1: cp-1-node-registrations",
        "cp-1: cp-1-cluster-network",
      ],
    );
    assert.equal(new Set(haPlan.map((s) => s.id)).size, haPlan.length, "ids are unique");
  });

  it("every step waits only for steps planned before it; what each waits for", () => {
    const seen = new Set<string>();
    for (const step of haPlan) {
      for (const id of step.after) assert.ok(seen.has(id), `${step.id} waits for ${id}, planned later`);
      seen.add(step.id);
    }
    const after = Object.fromEntries(haPlan.map((s) => [s.id, s.after]));
    // A node's steps run one after another; a worker's kubelet is configured once every control plane is prepared.
    assert.deepEqual(after["cp-2-install-containerd"], ["cp-2-preflight"]);
    assert.deepEqual(after["cp-2-configure-kubelet"], ["cp-2-install-kubelet"]);
    assert.deepEqual(after["worker-1-configure-kubelet"], [
      "worker-1-install-kubelet",
      "cp-1-configure-kubelet",
      "cp-2-configure-kubelet",
      "cp-3-configure-kubelet",
    ]);
    assert.deepEqual(after["etcd-1-etcd-member"], []);
    // kubeadm init waits for its machine's node steps and every external etcd member.
    assert.deepEqual(after["cp-1-kubeadm-init"], [
      "cp-1-configure-kubelet",
      "etcd-1-etcd-member",
      "etcd-2-etcd-member",
      "etcd-3-etcd-member",
    ]);
    // Control planes join one after the other (etcd grows one member at a time), workers after the last of them.
    assert.deepEqual(after["cp-2-kubeadm-join"], ["cp-2-configure-kubelet", "cp-1-bootstrap-token"]);
    assert.deepEqual(after["cp-3-kubeadm-join"], ["cp-3-configure-kubelet", "cp-2-kubeadm-join"]);
    assert.deepEqual(after["worker-1-kubeadm-join"], ["worker-1-configure-kubelet", "cp-3-kubeadm-join"]);
    assert.deepEqual(after["worker-2-kubeadm-join"], ["worker-2-configure-kubelet", "cp-3-kubeadm-join"]);
    assert.deepEqual(after["cp-1-node-registrations"], [
      "cp-3-kubeadm-join",
      "worker-1-kubeadm-join",
      "worker-2-kubeadm-join",
    ]);
    // A new version: the control planes one at a time, then kube-proxy and the CNI, then the workers (batches of 1).
    // Each control plane's certificate renewal follows its upgrade (both nothing without a new value or version).
    assert.deepEqual(after["cp-1-kubernetes-upgrade"], ["cp-1-node-registrations"]);
    assert.deepEqual(after["cp-1-certificate-renewal"], ["cp-1-kubernetes-upgrade"]);
    assert.deepEqual(after["cp-2-kubernetes-upgrade"], ["cp-1-certificate-renewal"]);
    assert.deepEqual(after["cp-3-kubernetes-upgrade"], ["cp-2-certificate-renewal"]);
    assert.deepEqual(after["cp-1-cluster-network"], ["cp-3-certificate-renewal"]);
    assert.deepEqual(after["cp-1-upgrade-drain-worker-1"], ["cp-1-cluster-network"]);
    assert.deepEqual(after["worker-1-kubernetes-upgrade"], ["cp-1-upgrade-drain-worker-1"]);
    assert.deepEqual(after["cp-1-upgrade-uncordon-worker-1"], ["worker-1-kubernetes-upgrade"]);
    assert.deepEqual(after["cp-1-upgrade-drain-worker-2"], ["cp-1-upgrade-uncordon-worker-1"]);
    assert.deepEqual(after["cp-1-upgrade-uncordon-worker-2"], ["worker-2-kubernetes-upgrade"]);
  });

  it("workers upgrade in batches of upgrade.workerBatchSize, each batch after the one before is uncordoned", () => {
    const batched = planCluster({ ...ha, upgrade: { ...ha.upgrade, workerBatchSize: 2 } });
    const after = Object.fromEntries(batched.map((s) => [s.id, s.after]));
    assert.deepEqual(after["cp-1-upgrade-drain-worker-1"], ["cp-1-cluster-network"]);
    assert.deepEqual(after["cp-1-upgrade-drain-worker-2"], ["cp-1-cluster-network"]);
    const upgrades = batched.filter((s) => s.step === "kubernetes-upgrade");
    assert.deepEqual(
      upgrades.map((s) => s.machine),
      ha.machines.map((m) => m.name),
      "one upgrade step on every node, control planes first",
    );
    const init = upgrades.find((s) => s.machine === "cp-1")!;
    const script = init.script as string;
    assert.match(script, /kubeadm upgrade apply "\$nf_wanted" --yes/);
    assert.match(script, /^nf_wanted='?v1\.36\.4'?$/m);
    assert.doesNotMatch(
      script,
      /nf_run kubeadm upgrade node/,
      "the first control plane applies; it does not upgrade node",
    );
    const other = upgrades.find((s) => s.machine === "cp-2")!.script as string;
    assert.match(other, /nf_run kubeadm upgrade node/);
    assert.doesNotMatch(other, /nf_run kubeadm upgrade apply/);
    const worker = upgrades.find((s) => s.machine === "worker-1")!.script as string;
    assert.match(worker, /kubeadm upgrade node/);
    assert.doesNotMatch(worker, /nf_upgrade_drain '/, "a worker is drained by the first control plane");
    assert.match(
      worker,
      /^ {2}nf_wait_upgraded \/etc\/kubernetes\/kubelet\.conf worker-1 /m,
      "a worker reads its Node as itself",
    );
    assert.doesNotMatch(worker, /admin\.conf/, "a worker never holds the admin's credentials");
  });

  it("units: containerd and the kubelet on every node, the etcd member on its machine", () => {
    const units = Object.fromEntries(haPlan.filter((s) => s.units.length > 0).map((s) => [s.id, s.units]));
    assert.deepEqual(units["worker-1-install-containerd"], [{ name: "containerd.service", running: true }]);
    assert.deepEqual(units["worker-1-configure-kubelet"], [{ name: "kubelet.service", running: false }]);
    assert.deepEqual(units["etcd-1-etcd-member"], [{ name: "nodeforge-etcd.service", running: true }]);
  });

  it("files: secrets root-only, made from the secrets they name; scripts carry none", () => {
    const secrets = secretsFor();
    const init = haPlan.find((s) => s.id === "cp-1-kubeadm-init")!;
    const byPath = Object.fromEntries(init.files.map((f) => [f.path, f]));
    assert.equal(byPath["/etc/kubernetes/pki/ca.key"]?.mode, "0600");
    assert.equal(byPath["/etc/kubernetes/pki/ca.crt"]?.mode, "0644");
    assert.equal(fileContent(byPath["/etc/kubernetes/pki/ca.key"]!, secrets), secrets.caKey);
    assert.equal(byPath["/etc/kubernetes/pki/etcd/ca.key"], undefined, "external etcd: no stacked etcd CA");
    assert.equal(
      fileContent(byPath["/etc/kubernetes/pki/etcd-external/client.key"]!, secrets),
      secrets.externalEtcdClientKey,
    );
    const config = byPath["/etc/kubernetes/nodeforge/kubeadm-init.yaml"]!;
    assert.ok(isSecretFile(config) && config.mode === "0600");
    assert.ok(fileContent(config, secrets).includes(secrets.bootstrapToken));
    const member = haPlan.find((s) => s.id === "etcd-2-etcd-member")!;
    const memberKey = member.files.find((f) => f.path === "/etc/etcd/pki/member.key")!;
    assert.ok(isSecretFile(memberKey) && memberKey.mode === "0600");
    assert.equal(fileContent(memberKey, secrets), secrets.externalEtcdMembers.memberKeys["etcd-2"]);
    const memberCert = member.files.find((f) => f.path === "/etc/etcd/pki/member.crt")!;
    assert.ok(!isSecretFile(memberCert), "a certificate is public");
    const keys = [
      secrets.bootstrapToken,
      secrets.caKey,
      secrets.externalEtcdClientKey,
      ...Object.values(secrets.externalEtcdMembers.memberKeys),
    ];
    for (const step of haPlan) {
      for (const f of step.files) if (isSecretFile(f)) assert.equal(f.mode, "0600", f.path);
      for (const text of [scriptText(step.script, secrets), step.deleteScript]) {
        for (const value of keys) assert.ok(!text.includes(value), step.id);
      }
    }
  });

  it("a single control plane: no token or registrations without machines to join; stacked etcd's CA written", () => {
    const alone = planCluster({ ...plain, machines: plain.machines.slice(0, 1) });
    const cluster = alone.filter((s) => !NODE_STEPS.includes(s.step));
    assert.deepEqual(
      cluster.map((s) => s.id),
      ["cp-1-kubeadm-init", "cp-1-kubernetes-upgrade", "cp-1-certificate-renewal", "cp-1-cluster-network"],
    );
    assert.deepEqual(cluster[1]!.after, ["cp-1-kubeadm-init"]);
    assert.deepEqual(cluster[3]!.after, ["cp-1-certificate-renewal"]);
    assert.ok(cluster[0]!.files.some((f) => f.path === "/etc/kubernetes/pki/etcd/ca.key"));
  });

  it("each control plane's upgrade and renewal read kubeadm's certificates there; etcd's only where kubeadm runs it", () => {
    const reading = (plan: typeof haPlan) =>
      plan.filter((s) => s.certificates).map((s) => [s.id, s.certificates!.length] as const);
    // The HA example's etcd is external: its certificates are nodeforge's (EtcdPki), not read on the control planes.
    assert.deepEqual(reading(haPlan), [
      ["cp-1-kubernetes-upgrade", 7],
      ["cp-1-certificate-renewal", 7],
      ["cp-2-kubernetes-upgrade", 7],
      ["cp-2-certificate-renewal", 7],
      ["cp-3-kubernetes-upgrade", 7],
      ["cp-3-certificate-renewal", 7],
    ]);
    const stacked = planCluster(plain).find((s) => s.id === "cp-1-certificate-renewal")!;
    assert.ok(stacked.certificates!.includes("/etc/kubernetes/pki/etcd/server.crt"));
    assert.ok(stacked.certificates!.includes("/etc/kubernetes/admin.conf"));
  });
});
