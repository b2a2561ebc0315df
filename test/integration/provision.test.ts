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
import { activeSince, captureLab, inMachine, labStack, mtimes } from "../harness/provision";
import { ensureRootfs } from "../harness/rootfs";
import { ensureTinyImage } from "../harness/tiny-image";

const NAMES = ["cp-1", "worker-1", "worker-2"];
const BINARIES = ["kubelet", "kubeadm", "kubectl", "crictl"].map((b) => `/usr/local/bin/${b}`);
/** What the cluster bootstrap writes: kubeadm configs, the cluster CAs, kube-proxy's manifest. */
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
  const managedPaths = () => {
    const stack = labStack(lab());
    return planMachine(stack, stack.machines[0]!).flatMap((p) => p.files.map((f) => f.path));
  };

  test("a kubelet download that fails its pinned sha256 fails the step and leaves no binary", async () => {
    const restore = lab().artifacts.serveWrongFile(kubeBinaryPath("1.34.4", "amd64", "kubelet"));
    try {
      const program = await captureLab(lab(), labStack(lab()));
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
    const program = await captureLab(lab(), labStack(lab()));
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

  test("a re-run with no change rewrites no file and restarts no unit", async () => {
    const before = await Promise.all(machines().map((m) => mtimes(m, managedPaths())));
    const since = await Promise.all(machines().map((m) => activeSince(m, "containerd.service")));
    const report = await up(await captureLab(lab(), labStack(lab())), state);
    log(`re-run with no change: ${report.seconds.toFixed(2)} s, ${report.commandConnections} command connection(s)`);
    assert.deepEqual(changed(report), []);
    assert.equal(report.commandConnections, 0);
    assert.deepEqual(await Promise.all(machines().map((m) => mtimes(m, managedPaths()))), before);
    assert.deepEqual(await Promise.all(machines().map((m) => activeSince(m, "containerd.service"))), since);
  });

  test("every step script is idempotent: running them all again (state lost) restarts nothing", async () => {
    const since = await Promise.all(machines().map((m) => activeSince(m, "containerd.service")));
    const fresh = emptyState();
    const report = await up(await captureLab(lab(), labStack(lab())), fresh);
    assert.ok(report.operations.every((o) => o.op === "create"));
    assert.deepEqual(await Promise.all(machines().map((m) => activeSince(m, "containerd.service"))), since);
    state = fresh;
  });

  test("changing one kubelet setting changes only its file and step, on every machine", async () => {
    const paths = managedPaths().filter((p) => p !== "/etc/kubernetes/kubelet.conf.d/10-nodeforge.conf");
    const before = await Promise.all(machines().map((m) => mtimes(m, paths)));
    const since = await Promise.all(machines().map((m) => activeSince(m, "containerd.service")));
    const report = await up(await captureLab(lab(), labStack(lab(), "kubelet:\n  maxPods: 55\n")), state);
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
    await destroy(state);
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
    const program = await captureLab(lab(), labStack(lab()));
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
