/** The nodeforge command as a user runs it: exit codes, messages, rendered output. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { projectRoot } from "../../modules/project-root";

const cli = join(projectRoot(), "build", "modules", "cli", "main.js");
const example = join(projectRoot(), "stacks", "example-baremetal.yaml");
const haExample = join(projectRoot(), "stacks", "example-ha.yaml");
const work = mkdtempSync(join(tmpdir(), "nodeforge-cli-"));
after(() => rmSync(work, { recursive: true, force: true }));

function nodeforge(...args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });
}

describe("nodeforge validate", () => {
  it("exits 0 on a valid file and says what it found", () => {
    const run = nodeforge("validate", example);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /example-baremetal\.yaml: valid \(3 machine\(s\), Kubernetes 1\.36\.4\)/);
  });

  it("exits 2 and lists every problem as file:line:col: path: message", () => {
    const bad = join(work, "bad.yaml");
    writeFileSync(
      bad,
      readFileSync(example, "utf8").replace("port: 2222", "port: 70000").replace("role: worker\n", "role: boss\n"),
    );
    const run = nodeforge("validate", bad);
    assert.equal(run.status, 2);
    const lines = run.stderr.trim().split("\n");
    assert.deepEqual(lines, [
      `${bad}:35:11: machines[1].role: "boss" is not allowed; must be one of: control-plane, worker, control-plane+worker`,
      `${bad}:46:18: machines[2].ssh.port: 70000 must be <= 65535`,
      `${bad}: 2 problem(s)`,
    ]);
  });

  it("exits 64 with usage on bad arguments", () => {
    const run = nodeforge("validate");
    assert.equal(run.status, 64);
    assert.match(run.stderr, /usage:/);
  });
});

describe("nodeforge render", () => {
  it("writes every file and script for the machine, with a manifest of modes and owners", () => {
    const out = join(work, "render");
    const run = nodeforge("render", example, "--machine", "worker-2", "--out", out);
    assert.equal(run.status, 0, run.stderr);
    const manifest = readFileSync(join(out, "MANIFEST"), "utf8");
    assert.match(manifest, /^step 01-preflight: /m);
    assert.match(manifest, /^ {2}file \/etc\/systemd\/system\/containerd\.service mode 0644 owner root:root$/m);
    assert.match(readFileSync(join(out, "files", "etc", "containerd", "config.toml"), "utf8"), /SystemdCgroup = true/);
    assert.match(readFileSync(join(out, "steps", "02-install-containerd.sh"), "utf8"), /dnf -q -y install/);
    assert.equal(statSync(join(out, "steps", "04-configure-kubelet.delete.sh")).mode & 0o777, 0o755);
  });

  it("writes the cluster's steps too, on the machines they run on (HA with kube-vip and external etcd)", () => {
    const rendered = (machine: string) => {
      const out = join(work, `ha-${machine}`);
      const run = nodeforge("render", haExample, "--machine", machine, "--out", out);
      assert.equal(run.status, 0, run.stderr);
      const manifest = readFileSync(join(out, "MANIFEST"), "utf8");
      const steps = [...manifest.matchAll(/^step (\S+):/gm)].map((m) => m[1]);
      return { out, manifest, steps, file: (path: string) => readFileSync(join(out, "files", path), "utf8") };
    };
    const nodeSteps = ["01-preflight", "02-install-containerd", "03-install-kubelet", "04-configure-kubelet"];
    const first = rendered("cp-1");
    assert.deepEqual(first.steps, [
      ...nodeSteps,
      "05-kubeadm-init",
      "06-bootstrap-token",
      "07-node-registrations",
      "08-kubernetes-upgrade",
      "09-certificate-renewal",
      "10-cluster-network",
      "11-upgrade-drain-worker-1",
      "12-upgrade-uncordon-worker-1",
      "13-upgrade-drain-worker-2",
      "14-upgrade-uncordon-worker-2",
    ]);
    // The files made of the cluster's secrets: a throwaway PKI's, marked, root-only.
    assert.match(
      first.manifest,
      /^ {2}file \/etc\/kubernetes\/pki\/ca\.key mode 0600 owner root:root secret \(throwaway value\)$/m,
    );
    assert.match(first.manifest, /^ {2}file \/etc\/kubernetes\/pki\/ca\.crt mode 0644 owner root:root$/m);
    assert.equal(statSync(join(first.out, "files", "etc", "kubernetes", "pki", "ca.key")).mode & 0o777, 0o600);
    assert.match(first.file("etc/kubernetes/pki/ca.crt"), /^-----BEGIN CERTIFICATE-----/);
    // External etcd: its CA and client certificate for the API server, not the stacked etcd CA.
    assert.match(first.manifest, /^ {2}file \/etc\/kubernetes\/pki\/etcd-external\/client\.key mode 0600 /m);
    assert.doesNotMatch(first.manifest, /pki\/etcd\/ca\.key/);
    const init = first.file("etc/kubernetes/nodeforge/kubeadm-init.yaml");
    assert.match(init, /- "https:\/\/192\.0\.2\.31:2379"/);
    assert.match(init, /token: "?[a-z0-9]{6}\.[a-z0-9]{16}"?/);
    assert.match(first.file("etc/kubernetes/manifests/kube-vip.yaml"), /192\.0\.2\.100/);
    assert.match(readFileSync(join(first.out, "steps", "05-kubeadm-init.sh"), "utf8"), /kubeadm init --config /);
    assert.match(readFileSync(join(first.out, "steps", "05-kubeadm-init.delete.sh"), "utf8"), /kubeadm reset --force/);

    const second = rendered("cp-2");
    assert.deepEqual(second.steps, [
      ...nodeSteps,
      "05-kubeadm-join",
      "06-kubernetes-upgrade",
      "07-certificate-renewal",
    ]);
    assert.match(second.manifest, /^ {2}file \/etc\/kubernetes\/pki\/ca\.key mode 0600 /m);
    assert.match(second.file("etc/kubernetes/nodeforge/kubeadm-join.yaml"), /controlPlane:/);
    const worker = rendered("worker-2");
    assert.deepEqual(worker.steps, [...nodeSteps, "05-kubeadm-join", "06-kubernetes-upgrade"]);
    assert.doesNotMatch(worker.manifest, /pki/);
    // An external etcd member's machine: its one step, its keys a throwaway PKI's, root-only.
    const etcd = rendered("etcd-2");
    assert.deepEqual(etcd.steps, ["01-etcd-member"]);
    assert.match(
      etcd.manifest,
      /^ {2}file \/etc\/etcd\/pki\/member\.key mode 0600 owner root:root secret \(throwaway value\)$/m,
    );
    assert.match(etcd.manifest, /^ {2}file \/etc\/etcd\/pki\/member\.crt mode 0644 owner root:root$/m);
    assert.match(etcd.file("etc/etcd/nodeforge-etcd.yaml"), /etcd-2=https:\/\/192\.0\.2\.32:2380/);
    assert.match(readFileSync(join(etcd.out, "steps", "01-etcd-member.sh"), "utf8"), /nf_machine=etcd-2/);
    assert.match(
      worker.file("etc/kubernetes/nodeforge/kubeadm-join.yaml"),
      /caCertHashes:\n\s+- "?sha256:[0-9a-f]{64}"?/,
    );
  });

  it("names the machines there are when asked for one that is not in the file", () => {
    const run = nodeforge("render", example, "--machine", "nope", "--out", join(work, "none"));
    assert.equal(run.status, 2);
    assert.match(run.stderr, /no machine named 'nope'; machines: cp-1, worker-1, worker-2/);
  });
});
