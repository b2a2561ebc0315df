/**
 * `pulumi up` and `pulumi destroy` on three real systemd machines (systemd-nspawn), the engine's part played
 * by test/harness/engine-replay.ts over the resources the program registers under mocks.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { closeAllSessions, sessionStats } from "../../modules/remote";
import { planMachine } from "../../modules/steps/plan";
import { kubeBinaryPath } from "../harness/artifact-mirror";
import { destroy, emptyState, ReplayError, up, type ReplayReport, type ReplayState } from "../harness/engine-replay";
import { useMachines, type Machine } from "../harness/machines";
import { cniManifestDouble, cniManifestPath } from "../harness/cni-doubles";
import { activeSince, captureLab, inMachine, labCniYaml, labStack, mtimes } from "../harness/provision";
import { ensureRootfs } from "../harness/rootfs";
import { ensureTinyImage } from "../harness/tiny-image";

const NAMES = ["cp-1", "worker-1", "worker-2"];
const BINARIES = ["kubelet", "kubeadm", "kubectl", "crictl"].map((b) => `/usr/local/bin/${b}`);
/** What the cluster bootstrap writes: kubeadm configs, the cluster CAs, kube-proxy's and the CNI's manifests. */
const BOOTSTRAP_PATHS = ["/etc/kubernetes/nodeforge", "/etc/kubernetes/pki", "/etc/kubernetes"];
const log = (line: string): void => console.log(line);

function changed(report: ReplayReport): string[] {
  return report.operations
    .filter((o) => o.op !== "same")
    .map((o) => `${o.name}:${o.op}`)
    .sort();
}

describe("provisioning real machines", { timeout: 1_200_000 }, () => {
  const lab = useMachines(3, { names: NAMES });
  let state: ReplayState = emptyState();
  const machines = (): Machine[] => lab().machines;
  /** The lab's stack with flannel (its test-double manifest on the artifact mirror), plus `extra` YAML. */
  const stack = (extra = "") => labStack(lab(), labCniYaml(lab(), "flannel") + extra);
  const flannel = () => lab().artifacts.pins.cni.flannel;
  const cniManifest = "/etc/kubernetes/nodeforge/cni/flannel.yaml";
  const managedPaths = () => {
    const spec = stack();
    return planMachine(spec, spec.machines[0]!).flatMap((p) => p.files.map((f) => f.path));
  };

  test("a kubelet download that fails its pinned sha256 fails the step and leaves no binary", async () => {
    const restore = lab().artifacts.serveWrongFile(kubeBinaryPath("1.34.4", "amd64", "kubelet"));
    try {
      const program = await captureLab(lab(), stack());
      const failure = await up(program, state).then(
        () => assert.fail("up succeeded with a tampered kubelet"),
        (error: unknown) => error as ReplayError,
      );
      assert.ok(failure instanceof ReplayError, String(failure));
      const failed = failure.failures.map((f) => f.name);
      assert.ok(failed.length > 0 && failed.every((n) => /-install-kubelet$/.test(n)), failed.join());
      for (const f of failure.failures) {
        const machine = f.name.replace(/-install-kubelet$/, "");
        assert.match(
          f.error.message,
          new RegExp(`${machine}: install-kubelet: sha256 mismatch for http://\\S+/kubelet`),
        );
        assert.match(f.error.message, /expected [0-9a-f]{64}, got [0-9a-f]{64}/);
      }
      for (const machine of machines()) {
        await inMachine(
          machine,
          "test ! -e /usr/local/bin/kubelet && ! ls /usr/local/bin | grep -q nodeforge-download",
        );
      }
    } finally {
      restore();
    }
  });

  test("three machines are provisioned in parallel: containerd runs containers, kubelet is in place", async () => {
    const program = await captureLab(lab(), stack());
    const report = await up(program, state);
    log(`provisioned 3 machines in ${report.seconds.toFixed(1)} s (after the failed attempt above)`);
    const image = await ensureTinyImage(await ensureRootfs());
    for (const machine of machines()) {
      assert.equal((await inMachine(machine, "systemctl is-active containerd.service")).trim(), "active");
      assert.match(
        await inMachine(machine, "ctr --address /run/containerd/containerd.sock version"),
        /Server:\s+Version:/,
      );
      machine.copyIn(image.path, "/root/tiny.tar");
      await inMachine(machine, "ctr -n nodeforge-test image import /root/tiny.tar >/dev/null");
      assert.equal(
        (await inMachine(machine, `ctr -n nodeforge-test run --rm ${image.ref} hello /bin/busybox echo hello`)).trim(),
        "hello",
      );
      assert.equal((await inMachine(machine, "systemctl is-enabled kubelet.service")).trim(), "enabled");
      assert.equal(
        (await inMachine(machine, "/usr/local/bin/kubelet --version")).trim().split(":")[0],
        "nodeforge test double",
      );
      await inMachine(
        machine,
        `test -x /usr/local/bin/crictl && ${managedPaths()
          .map((p) => `test -f ${p}`)
          .join(" && ")}`,
      );
      // The cluster bootstrap ran its (test double) kubeadm with a config only root can read.
      const config = machine.name === "cp-1" ? "kubeadm-init.yaml" : "kubeadm-join.yaml";
      assert.equal((await inMachine(machine, `stat -c %a /etc/kubernetes/nodeforge/${config}`)).trim(), "600");
      // Any output of systemd-analyze verify (it only warns on unknown keys) is a failure.
      const verify = await machine.run("systemd-analyze verify kubelet.service containerd.service 2>&1");
      assert.equal(verify.stdout.trim(), "", `${machine.name}: systemd-analyze verify`);
      assert.equal(verify.code, 0);
    }
  });

  test("flannel's manifest is applied once the nodes joined; a tampered one fails its sha256 and changes nothing", async () => {
    const [cp] = machines();
    const applied = cniManifestDouble("flannel", flannel().version);
    // The default pod CIDR is flannel's own: the one net-conf.json line was found and kept as it is.
    assert.equal(await inMachine(cp!, `cat ${cniManifest}`), applied);
    assert.equal((await inMachine(cp!, `stat -c %a ${cniManifest}`)).trim(), "644");

    // Tamper with the mirror's copy and change the checksum-bearing step (a new podCIDR would do the same).
    const restore = lab().artifacts.serveWrongFile(cniManifestPath("flannel", flannel().version));
    const fresh = emptyState();
    try {
      const failure = await up(await captureLab(lab(), stack()), fresh).then(
        () => assert.fail("up succeeded with a tampered CNI manifest"),
        (error: unknown) => error as ReplayError,
      );
      assert.deepEqual(
        failure.failures.map((f) => f.name),
        ["cp-1-cni"],
      );
      assert.match(
        failure.failures[0]!.error.message,
        /cp-1: cni: sha256 mismatch for http:\/\/\S+\/kube-flannel\.yml: expected [0-9a-f]{64}, got [0-9a-f]{64}/,
      );
      assert.equal(await inMachine(cp!, `cat ${cniManifest}`), applied, "the applied manifest was kept");
      await inMachine(cp!, `test ! -e ${cniManifest}.nodeforge-download`);
    } finally {
      restore();
    }
    // With the mirror right again, the same run converges: only the CNI step runs.
    const report = await up(await captureLab(lab(), stack()), fresh);
    assert.deepEqual(
      report.operations.filter((o) => o.op === "create" && o.name.endsWith("-cni")).map((o) => o.name),
      ["cp-1-cni"],
    );
    state = fresh;
  });

  test("a re-run with no change rewrites no file and restarts no unit", async () => {
    const before = await Promise.all(machines().map((m) => mtimes(m, managedPaths())));
    const since = await Promise.all(machines().map((m) => activeSince(m, "containerd.service")));
    const report = await up(await captureLab(lab(), stack()), state);
    log(`re-run with no change: ${report.seconds.toFixed(2)} s, ${report.commandConnections} command connection(s)`);
    assert.deepEqual(changed(report), []);
    assert.equal(report.commandConnections, 0);
    assert.deepEqual(await Promise.all(machines().map((m) => mtimes(m, managedPaths()))), before);
    assert.deepEqual(await Promise.all(machines().map((m) => activeSince(m, "containerd.service"))), since);
  });

  test("every step script is idempotent: running them all again (state lost) restarts nothing", async () => {
    const since = await Promise.all(machines().map((m) => activeSince(m, "containerd.service")));
    const fresh = emptyState();
    const report = await up(await captureLab(lab(), stack()), fresh);
    assert.ok(report.operations.every((o) => o.op === "create"));
    assert.deepEqual(await Promise.all(machines().map((m) => activeSince(m, "containerd.service"))), since);
    state = fresh;
  });

  test("changing one kubelet setting changes only its file and step, on every machine", async () => {
    const paths = managedPaths().filter((p) => p !== "/etc/kubernetes/kubelet.conf.d/10-nodeforge.conf");
    const before = await Promise.all(machines().map((m) => mtimes(m, paths)));
    const since = await Promise.all(machines().map((m) => activeSince(m, "containerd.service")));
    const report = await up(await captureLab(lab(), stack("kubelet:\n  maxPods: 55\n")), state);
    assert.deepEqual(
      changed(report),
      NAMES.flatMap((n) => [
        `${n}-configure-kubelet-etc-kubernetes-kubelet.conf.d-10-nodeforge.conf:update`,
        `${n}-configure-kubelet:update`,
      ]).sort(),
    );
    for (const machine of machines()) {
      assert.match(await inMachine(machine, "cat /etc/kubernetes/kubelet.conf.d/10-nodeforge.conf"), /^maxPods: 55$/m);
    }
    assert.deepEqual(await Promise.all(machines().map((m) => mtimes(m, paths))), before);
    assert.deepEqual(await Promise.all(machines().map((m) => activeSince(m, "containerd.service"))), since);
  });

  test("destroy removes every file, unit and binary nodeforge installed, and only the packages it installed", async () => {
    // What flannel's pods leave on a node (files, state, interfaces), and a CNI config that is not flannel's.
    const worker = machines()[1]!;
    await inMachine(
      worker,
      "touch /etc/cni/net.d/10-flannel.conflist /etc/cni/net.d/99-other.conflist /opt/cni/bin/flannel && " +
        "mkdir -p /run/flannel /var/lib/cni/networks/cbr0 && touch /run/flannel/subnet.env && " +
        "ip link add cni0 type bridge && ip link add flannel.1 type bridge",
    );
    await destroy(state);
    assert.equal(
      await inMachine(
        worker,
        "for p in /etc/cni/net.d/10-flannel.conflist /opt/cni/bin/flannel /run/flannel /var/lib/cni/networks/cbr0; " +
          'do [ ! -e "$p" ] || echo "$p"; done; ip -o link show | grep -Eo "(cni0|flannel\\.1):" || true',
      ),
      "",
      "flannel's leftovers were removed",
    );
    await inMachine(worker, "rm /etc/cni/net.d/99-other.conflist && rmdir /etc/cni/net.d /etc/cni");
    for (const machine of machines()) {
      const leftovers = await inMachine(
        machine,
        `for p in ${[...managedPaths(), ...BINARIES, ...BOOTSTRAP_PATHS, "/var/lib/nodeforge", "/etc/systemd/system/containerd.service.d"].join(" ")}; do [ ! -e "$p" ] || echo "$p"; done`,
      );
      // The harness mounts a directory at /var/lib/containerd (as a dedicated disk would be): emptied, kept.
      assert.equal(await inMachine(machine, "ls -A /var/lib/containerd"), "", `${machine.name}: containerd data left`);
      assert.equal(leftovers, "", `${machine.name}: left behind`);
      assert.notEqual((await machine.run("systemctl cat kubelet.service")).code, 0);
      assert.notEqual(
        (await machine.run("dpkg-query -W -f='${db:Status-Status}' containerd | grep -qx installed")).code,
        0,
      );
      // curl and iproute2 came with the machine: destroy must leave them.
      await inMachine(
        machine,
        "dpkg-query -W -f='${db:Status-Status}\\n' curl iproute2 | grep -c installed | grep -qx 2",
      );
    }
  });

  test("a step killed halfway (connection dropped) converges when run again", async () => {
    const victim = machines()[1]!;
    const program = await captureLab(lab(), stack());
    const running = up(program, state).then(
      () => undefined,
      (error: unknown) => error,
    );
    // Wait until apt is installing on the victim, then cut its SSH session and kill the step mid-way.
    for (let i = 0; ; i++) {
      if ((await victim.run("pgrep -x dpkg || pgrep -x apt-get")).code === 0) break;
      assert.ok(i < 600, "apt never started on the victim");
      await new Promise((r) => setTimeout(r, 100));
    }
    await victim.run(
      "pkill -KILL -f 'sshd: root@notty'; pkill -KILL -f 'nodeforge step install-containerd'; pkill -KILL -x apt-get; pkill -KILL -x dpkg; true",
    );
    const error = await running;
    assert.ok(error instanceof ReplayError, `up should fail after the cut, got ${String(error)}`);
    assert.ok(
      error.failures.some((f) => f.name === `${victim.name}-install-containerd`),
      error.message,
    );

    const report = await up(program, state);
    assert.ok(report.operations.some((o) => o.name === `${victim.name}-install-containerd` && o.op === "create"));
    for (const machine of machines()) {
      assert.equal((await inMachine(machine, "systemctl is-active containerd.service")).trim(), "active");
      assert.equal((await inMachine(machine, "dpkg --audit")).trim(), "", `${machine.name}: dpkg is consistent`);
    }
    await destroy(state);
    await closeAllSessions();
    log(`RemoteFile SSH connections in this file: ${sessionStats().connects}`);
  });
});
