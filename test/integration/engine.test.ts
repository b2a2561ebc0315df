/**
 * The real Pulumi engine (the CLI .ci/install-pulumi builds, driven through the Automation API) running this
 * project's Pulumi.yaml and index.ts (ts-node) on real systemd machines (systemd-nspawn): a checksum failure, up
 * from bare machines, no-op preview / refresh / up, in-place changes that never run a delete script, drift, a
 * machine added and removed, unreachable and wrongly pinned machines, lost state, a step killed halfway, destroy.
 * What ran on each machine is read from its journal (`journalctl -t nodeforge`: `<step> <create|update|delete>`).
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { planCluster } from "../../modules/plan";
import { parseStack } from "../../modules/stack";
import { kubeBinaryPath } from "../harness/artifact-mirror";
import { cniManifestDouble } from "../harness/cni-doubles";
import { labStackYaml } from "../harness/lab-stack";
import { useMachines, type Lab, type Machine } from "../harness/machines";
import { activeSince, inMachine, labCniYaml, mtimes } from "../harness/provision";
import { changed, EngineError, engineStack, type EngineReport, type EngineStack } from "../harness/pulumi-engine";
import { ensureRootfs } from "../harness/rootfs";
import { ensureTinyImage } from "../harness/tiny-image";

const NAMES = ["cp-1", "worker-1", "worker-2", "worker-3"];
const KUBELET_DROP_IN = "/etc/kubernetes/kubelet.conf.d/10-nodeforge.conf";
const CONTAINERD_CONFIG = "/etc/containerd/config.toml";
/** What nodeforge installs from release files: the Kubernetes programs, containerd's release, runc. */
const BINARIES = ["kubelet", "kubeadm", "kubectl", "crictl", "containerd", "containerd-shim-runc-v2", "ctr"]
  .map((b) => `/usr/local/bin/${b}`)
  .concat("/usr/local/sbin/runc");
const UNITS = ["containerd.service", "ssh.service", "systemd-journald.service"];
const log = (line: string): void => console.log(line);

/** The lab's stack file for the first `count` machines, flannel from the mirror, plus `extra` top-level YAML. */
function stackYaml(lab: Lab, count: number, extra = ""): string {
  return labStackYaml(
    { ...lab, machines: lab.machines.slice(0, count) },
    { extra: labCniYaml(lab, "flannel") + extra },
  );
}

/** Top-level YAML: the kubelet's maxPods and a docker.io registry mirror (the settings the later tests keep). */
function mirroredSettings(maxPods: number): string {
  return `kubelet:\n  maxPods: ${maxPods}\ncontainerd:\n  registryMirrors:\n    docker.io: ["http://10.0.0.1:5000"]\n`;
}

/** Every file path the node steps manage on a worker of the lab stack. */
function managedPaths(lab: Lab): string[] {
  const spec = parseStack(stackYaml(lab, 2), "lab.yaml");
  return planCluster(spec)
    .filter((step) => step.machine === spec.machines[1]!.name && step.step !== "kubeadm-join")
    .flatMap((step) => step.files.map((f) => f.path));
}

/** The resource of every planned step of the lab stack's first `count` machines, each with `op`. */
function everyStep(lab: Lab, count: number, op: string): string[] {
  return planCluster(parseStack(stackYaml(lab, count), "lab.yaml")).map((step) => `${step.id}:${op}`);
}

/** A step's files as the stack's state records them (after a refresh: as found on the machine). */
async function recordedFiles(
  engine: EngineStack,
  name: string,
): Promise<Record<string, { sha256: string; content?: string }>> {
  return (await recordedResource(engine, name)).outputs.files as Record<string, { sha256: string; content?: string }>;
}

/** A step's inputs as the stack's state records them (what was wanted). */
async function recordedInputs(
  engine: EngineStack,
  name: string,
): Promise<{ files: Record<string, { sha256: string }> }> {
  return (await recordedResource(engine, name)).inputs as { files: Record<string, { sha256: string }> };
}

async function recordedResource(
  engine: EngineStack,
  name: string,
): Promise<{ inputs: Record<string, unknown>; outputs: Record<string, unknown> }> {
  const deployment = (await engine.stack.exportStack()).deployment as {
    resources: { urn: string; inputs: Record<string, unknown>; outputs: Record<string, unknown> }[];
  };
  return deployment.resources.find((r) => r.urn.endsWith(`::${name}`)) ?? assert.fail(`no ${name} in the state`);
}

/** Every step script run noted in the machine's journal, oldest first: `<step> <create|update|delete>`. */
async function scriptRuns(machine: Machine): Promise<string[]> {
  const text = await inMachine(machine, "journalctl -q -o cat -t nodeforge --no-pager || true");
  return text.split("\n").filter(Boolean);
}

/** SSH logins sshd accepted on the machine so far. */
async function logins(machine: Machine): Promise<number> {
  const text = await inMachine(
    machine,
    "journalctl -q -o cat -u ssh.service --no-pager | grep -c 'Accepted publickey' || true",
  );
  return Number(text.trim());
}

async function units(machine: Machine): Promise<string[]> {
  return Promise.all(UNITS.map((unit) => activeSince(machine, unit)));
}

/** Runs `operation` and returns the EngineError it must fail with. */
async function failing(operation: Promise<EngineReport>, what: string): Promise<EngineError> {
  return operation.then(
    () => assert.fail(`${what} succeeded`),
    (error: unknown) => {
      assert.ok(error instanceof EngineError, String(error));
      return error;
    },
  );
}

/** The error diagnostics of a failed run, one `name: message` each (the engine's own summary line dropped). */
function errorsOf(error: EngineError): string[] {
  return error.report.errors
    .filter((e) => e.name !== "" && !e.name.startsWith("nodeforge-"))
    .map((e) => `${e.name}: ${e.message}`);
}

describe("the real Pulumi engine on real machines", { timeout: 2_400_000 }, () => {
  const lab = useMachines(NAMES.length, { names: NAMES });
  const machines = (count = 3): Machine[] => lab().machines.slice(0, count);
  let engine: EngineStack | undefined;
  const pulumi = (): EngineStack => engine ?? assert.fail("no stack yet");
  const spare: EngineStack[] = [];
  after(async () => {
    for (const stack of [engine, ...spare]) await stack?.remove();
  });

  test("a kubelet that fails its checksum fails install-kubelet; nothing is installed anywhere", async () => {
    engine = await engineStack(stackYaml(lab(), 3), lab().clientPrivateKey);
    // The first preview, with every value the PKI and the machines will give still unknown: all creates.
    const preview = await pulumi().preview();
    const steps = everyStep(lab(), 3, "create");
    // One resource per planned step: 4 node steps a machine; kubeadm init, the token, 2 joins, the registrations and
    // the cluster network (kube-proxy and flannel); the control plane's upgrade and certificate renewal, each worker's
    // drain, upgrade and uncordon (nothing while the machines run the stack's version): 26 on 3 machines.
    assert.equal(steps.length, 26);
    // One resource per step, besides the Cluster, its PKI, the admin's certificate, its recorded facts, one Node
    // component a machine and the engine's default provider for dynamic resources.
    assert.deepEqual(
      changed(preview).filter((c) => !steps.includes(c)),
      [
        "cp-1:create",
        "default:create",
        "lab-admin-certificate:create",
        "lab-facts:create",
        "lab-pki:create",
        "lab:create",
        "worker-1:create",
        "worker-2:create",
      ],
    );
    assert.deepEqual(
      changed(preview).filter((c) => steps.includes(c)),
      [...steps].sort(),
    );
    const restore = lab().artifacts.serveWrongFile(kubeBinaryPath("1.36.4", "amd64", "kubelet"));
    try {
      const failure = await failing(pulumi().up(), "up with a tampered kubelet");
      const errors = errorsOf(failure);
      // The engine starts no new step after the first failure: one machine or more reports it.
      assert.ok(errors.length >= 1, failure.message);
      for (const line of errors) {
        assert.match(
          line,
          /^([a-z0-9-]+)-install-kubelet: \1: install-kubelet: sha256 mismatch for http:\/\/\S+\/kubelet: expected [0-9a-f]{64}, got [0-9a-f]{64}$/,
        );
      }
      for (const machine of machines()) {
        await inMachine(
          machine,
          "test ! -e /usr/local/bin/kubelet && ! ls /usr/local/bin | grep -q nodeforge-download",
        );
        assert.ok(!(await scriptRuns(machine)).some((run) => run.endsWith(" delete")), "no delete script ran");
      }
    } finally {
      restore();
    }
  });

  test("pulumi up converges from there: containerd runs containers, kubelet in place, units verified", async () => {
    const report = await pulumi().up();
    log(`pulumi up, 3 machines (after the failed attempt): ${report.seconds.toFixed(1)} s`);
    const image = await ensureTinyImage(await ensureRootfs());
    for (const machine of machines()) {
      assert.equal((await inMachine(machine, "systemctl is-active containerd.service")).trim(), "active");
      machine.copyIn(image.path, "/root/tiny.tar");
      await inMachine(machine, "ctr -n nodeforge-test image import /root/tiny.tar >/dev/null");
      assert.equal(
        (await inMachine(machine, `ctr -n nodeforge-test run --rm ${image.ref} hello /bin/busybox echo hello`)).trim(),
        "hello",
      );
      assert.equal((await inMachine(machine, "systemctl is-enabled kubelet.service")).trim(), "enabled");
      await inMachine(machine, [...managedPaths(lab()), ...BINARIES].map((p) => `test -f ${p}`).join(" && "));
      const config = machine.name === "cp-1" ? "kubeadm-init.yaml" : "kubeadm-join.yaml";
      assert.equal((await inMachine(machine, `stat -c %a /etc/kubernetes/nodeforge/${config}`)).trim(), "600");
      const verify = await machine.run("systemd-analyze verify kubelet.service containerd.service 2>&1");
      assert.equal(verify.stdout.trim(), "", `${machine.name}: systemd-analyze verify`);
      assert.ok(!(await scriptRuns(machine)).some((run) => run.endsWith(" delete")), "no delete script ran");
    }
    assert.equal(
      await inMachine(machine0(), "cat /etc/kubernetes/nodeforge/cni/flannel.yaml"),
      cniManifestDouble("flannel", lab().artifacts.pins.cni.flannel.version),
    );
  });
  const machine0 = (): Machine => machines()[0]!;

  test("no change: preview and refresh find none, up touches no machine", async () => {
    const before = await Promise.all(machines().map((m) => mtimes(m, managedPaths(lab()))));
    const since = await Promise.all(machines().map(units));
    const sshBefore = await Promise.all(machines().map(logins));
    const preview = await pulumi().preview({ expectNoChanges: true });
    const noop = await pulumi().up({ expectNoChanges: true });
    const sshAfterUp = await Promise.all(machines().map(logins));
    const refresh = await pulumi().refresh({ expectNoChanges: true });
    const sshAfterRefresh = await Promise.all(machines().map(logins));
    log(
      `no change: pulumi preview ${preview.seconds.toFixed(1)} s, up ${noop.seconds.toFixed(1)} s, ` +
        `refresh ${refresh.seconds.toFixed(1)} s; SSH logins per machine: up ` +
        `${sshAfterUp.map((n, i) => n - sshBefore[i]!).join("/")}, refresh ` +
        `${sshAfterRefresh.map((n, i) => n - sshAfterUp[i]!).join("/")}`,
    );
    assert.deepEqual(changed(noop), []);
    assert.deepEqual(sshAfterUp, sshBefore, "a no-op up opens no SSH connection");
    // Refresh reads every file and unit back over one pooled connection per machine (its provider process's pool).
    assert.ok(
      sshAfterRefresh.every((n, i) => n - sshAfterUp[i]! <= 2),
      sshAfterRefresh.join(),
    );
    assert.deepEqual(await Promise.all(machines().map((m) => mtimes(m, managedPaths(lab())))), before);
    assert.deepEqual(await Promise.all(machines().map(units)), since);
  });

  test("one kubelet setting changed: only its file and step update, in place; no delete script runs", async () => {
    const others = managedPaths(lab()).filter((p) => p !== KUBELET_DROP_IN);
    const before = await Promise.all(machines().map((m) => mtimes(m, others)));
    const since = await Promise.all(machines().map(units));
    const runs = await Promise.all(machines().map(scriptRuns));
    pulumi().writeStackFile(stackYaml(lab(), 3, "kubelet:\n  maxPods: 55\n"));
    const expected = machines()
      .map((m) => `${m.name}-configure-kubelet:update`)
      .sort();
    const preview = await pulumi().preview({ diff: true });
    assert.deepEqual(changed(preview), expected);
    assert.match(preview.output, /maxPods\s*: 110 => 55/);
    // The diff names the file that changes.
    assert.match(preview.output, /~ \/etc\/kubernetes\/kubelet\.conf\.d\/10-nodeforge\.conf\s*: \{/);
    const report = await pulumi().up();
    assert.deepEqual(changed(report), expected);
    for (const [i, machine] of machines().entries()) {
      assert.match(await inMachine(machine, `cat ${KUBELET_DROP_IN}`), /^maxPods: 55$/m);
      const fresh = (await scriptRuns(machine)).slice(runs[i]!.length);
      assert.deepEqual(fresh, ["configure-kubelet update"]);
    }
    assert.deepEqual(await Promise.all(machines().map((m) => mtimes(m, others))), before);
    assert.deepEqual(await Promise.all(machines().map(units)), since);
  });

  test("a containerd setting changed: containerd restarts, nothing is uninstalled", async () => {
    const since = await Promise.all(machines().map((m) => activeSince(m, "containerd.service")));
    const runs = await Promise.all(machines().map(scriptRuns));
    pulumi().writeStackFile(stackYaml(lab(), 3, mirroredSettings(55)));
    const report = await pulumi().up();
    assert.ok(
      changed(report).length > 0 && changed(report).every((c) => c.endsWith(":update") || c.endsWith(":create")),
      changed(report).join(),
    );
    for (const [i, machine] of machines().entries()) {
      assert.notEqual(
        await activeSince(machine, "containerd.service"),
        since[i],
        `${machine.name}: containerd restarted`,
      );
      assert.equal((await inMachine(machine, "systemctl is-active containerd.service")).trim(), "active");
      // The pinned containerd release (the lab's build of it), not a distribution package.
      assert.match(await inMachine(machine, "containerd --version"), / v2\.3\.4 /);
      await inMachine(machine, "! dpkg-query -W -f='${db:Status-Status}' containerd | grep -qx installed");
      assert.deepEqual((await scriptRuns(machine)).slice(runs[i]!.length), ["install-containerd update"]);
      await inMachine(machine, "test -f /etc/containerd/certs.d/docker.io/hosts.toml");
    }
  });

  test("drift: a file edited and a unit disabled behind nodeforge's back; refresh shows them, up puts them back", async () => {
    const worker = machines()[1]!;
    const good = await inMachine(worker, `cat ${CONTAINERD_CONFIG}`);
    await inMachine(
      worker,
      `echo '# edited by hand' >> ${CONTAINERD_CONFIG} && systemctl disable --quiet kubelet.service`,
    );
    await failing(pulumi().refresh({ expectNoChanges: true }), "refresh --expect-no-changes after drift");
    const refresh = await pulumi().refresh();
    assert.deepEqual(changed(refresh), [
      `${worker.name}-configure-kubelet:update`,
      `${worker.name}-install-containerd:update`,
    ]);
    // The state names the drifted file: its sha256 is the edited file's; the step's other files are as wanted.
    const files = await recordedFiles(pulumi(), `${worker.name}-install-containerd`);
    const wanted = (await recordedInputs(pulumi(), `${worker.name}-install-containerd`)).files;
    const drifted = Object.keys(wanted).filter((path) => files[path]?.sha256 !== wanted[path]!.sha256);
    assert.deepEqual(drifted, [CONTAINERD_CONFIG]);
    assert.match(files[CONTAINERD_CONFIG]!.content ?? "", /# edited by hand\n$/);
    const runs = await scriptRuns(worker);
    const report = await pulumi().up();
    assert.deepEqual(changed(report), [
      `${worker.name}-configure-kubelet:update`,
      `${worker.name}-install-containerd:update`,
    ]);
    // What was wanted did not change: the file and the unit are put back, no script runs again.
    assert.deepEqual((await scriptRuns(worker)).slice(runs.length), []);
    assert.equal(await inMachine(worker, `cat ${CONTAINERD_CONFIG}`), good);
    assert.equal((await inMachine(worker, "systemctl is-enabled kubelet.service")).trim(), "enabled");
    await pulumi().refresh({ expectNoChanges: true });
  });

  test("a fourth machine added is the only one provisioned; removed again, it is drained, reset and cleaned", async () => {
    const newcomer = lab().machines[3]!;
    const others = machines();
    const since = await Promise.all(others.map(units));
    const runs = await Promise.all(others.map(scriptRuns));
    const extra = mirroredSettings(55);
    pulumi().writeStackFile(stackYaml(lab(), 4, extra));
    const added = await pulumi().up();
    log(`pulumi up, one machine added: ${added.seconds.toFixed(1)} s`);
    /** Whether a change is one of the newcomer's resources (its Node component, its steps). */
    const ofNewcomer = (c: string) => c.startsWith(`${newcomer.name}-`) || c.startsWith(`${newcomer.name}:`);
    // Elsewhere only the first control plane's token, issued afresh for the new machine, its Node awaited, the
    // newcomer's drain and uncordon for a later upgrade (nothing to do now), and the machines the facts record.
    const onFirst = ["cp-1-bootstrap-token:update", "cp-1-node-registrations:update"];
    const onFirstRuns = ["bootstrap-token update", "node-registrations update"];
    const upgradeSteps = [`cp-1-upgrade-drain-${newcomer.name}`, `cp-1-upgrade-uncordon-${newcomer.name}`];
    assert.deepEqual(
      changed(added).filter((c) => !ofNewcomer(c)),
      [...onFirst, ...upgradeSteps.map((id) => `${id}:create`), "lab-facts:update"],
    );
    const newcomerAdded = changed(added).filter(ofNewcomer);
    assert.deepEqual(newcomerAdded, [
      `${newcomer.name}-configure-kubelet:create`,
      `${newcomer.name}-install-containerd:create`,
      `${newcomer.name}-install-kubelet:create`,
      `${newcomer.name}-kubeadm-join:create`,
      `${newcomer.name}-kubernetes-upgrade:create`,
      `${newcomer.name}-preflight:create`,
      `${newcomer.name}:create`,
    ]);
    assert.equal((await inMachine(newcomer, "systemctl is-active containerd.service")).trim(), "active");
    for (const [i, machine] of others.entries()) {
      const fresh = (await scriptRuns(machine)).slice(runs[i]!.length);
      const upgradeRuns = ["upgrade-drain create", "upgrade-uncordon create"];
      assert.deepEqual(fresh, machine.name === "cp-1" ? [...onFirstRuns, ...upgradeRuns] : []);
    }

    pulumi().writeStackFile(stackYaml(lab(), 3, extra));
    const removed = await pulumi().up();
    log(`pulumi up, that machine removed: ${removed.seconds.toFixed(1)} s`);
    assert.deepEqual(
      changed(removed).filter((c) => !ofNewcomer(c)),
      [...onFirst, ...upgradeSteps.map((id) => `${id}:delete`), "lab-facts:update"],
      changed(removed).join(),
    );
    // Everything that was added goes again, deleted.
    assert.deepEqual(
      changed(removed).filter(ofNewcomer),
      newcomerAdded.map((c) => c.replace(/:create$/, ":delete")),
    );
    const cpRuns = (await scriptRuns(machine0())).slice(runs[0]!.length);
    // Added, then removed: the token issued afresh and the registrations run each time (the second drained it).
    assert.deepEqual(
      cpRuns,
      [...onFirstRuns, "upgrade-drain create", "upgrade-uncordon create", ...onFirstRuns],
      "drained on cp-1",
    );
    assert.equal(await inMachine(machine0(), "cat /var/lib/nodeforge/registered-nodes"), "worker-1\nworker-2\n");
    const leftovers = await inMachine(
      newcomer,
      `for p in ${[...managedPaths(lab()), ...BINARIES, "/var/lib/nodeforge", "/etc/kubernetes"].join(" ")}; do [ ! -e "$p" ] || echo "$p"; done`,
    );
    assert.equal(leftovers, "");
    assert.notEqual((await newcomer.run("systemctl cat kubelet.service")).code, 0);
    await inMachine(newcomer, "! dpkg-query -W -f='${db:Status-Status}' containerd | grep -qx installed");
    assert.ok((await scriptRuns(newcomer)).includes("kubeadm-join delete"), "reset on the machine itself");
    assert.deepEqual(await Promise.all(others.map(units)), since);
  });

  test("an unreachable machine and a wrongly pinned one fail with the README's messages; fixed, up converges", async () => {
    const [, misPinned, down] = machines();
    const good = mirroredSettings(64);
    const wrongKey = lab().machines[3]!.hostKey;
    const yaml = stackYaml(lab(), 3, good).replace(`hostKey: ${misPinned!.hostKey}`, `hostKey: ${wrongKey}`);
    pulumi().writeStackFile(yaml);
    await inMachine(down!, "systemctl stop ssh.socket ssh.service 2>/dev/null; systemctl stop ssh.service");
    try {
      const failure = await failing(pulumi().up(), "up with an unreachable and a wrongly pinned machine");
      const errors = errorsOf(failure);
      const of = (machine: Machine) => errors.filter((e) => e.startsWith(`${machine.name}-`));
      const refused = of(down!);
      assert.ok(refused.length > 0, errors.join("\n"));
      for (const line of refused) {
        assert.match(
          line,
          new RegExp(
            `^${down!.name}-\\S+: ${down!.name}: write ${KUBELET_DROP_IN}: connection to ${down!.address}:22 refused ` +
              "\\(is sshd listening there\\?\\) \\([0-9]+ attempts over [0-9.]+s\\)$",
          ),
        );
      }
      const mismatch = of(misPinned!);
      assert.ok(mismatch.length > 0, errors.join("\n"));
      for (const line of mismatch) {
        assert.match(
          line,
          new RegExp(
            `^${misPinned!.name}-\\S+: ${misPinned!.name}: write ${KUBELET_DROP_IN}: host key mismatch for ` +
              `${misPinned!.address}:22: expected SHA256:\\S+, presented SHA256:\\S+ \\(ssh-ed25519\\); refusing to connect$`,
          ),
        );
      }
      assert.match(await inMachine(machine0(), `cat ${KUBELET_DROP_IN}`), /^maxPods: 64$/m);
    } finally {
      await inMachine(down!, "systemctl start ssh.service");
    }
    pulumi().writeStackFile(stackYaml(lab(), 3, good));
    await pulumi().up();
    for (const machine of machines()) {
      assert.match(await inMachine(machine, `cat ${KUBELET_DROP_IN}`), /^maxPods: 64$/m);
    }
    await pulumi().preview({ expectNoChanges: true });
  });

  test("every step script is idempotent: a new stack (state lost) on the same machines restarts nothing", async () => {
    const since = await Promise.all(machines().map(units));
    const yaml = stackYaml(lab(), 3, mirroredSettings(64));
    const lost = await engineStack(yaml, lab().clientPrivateKey);
    spare.push(lost);
    const report = await lost.up();
    assert.ok(
      everyStep(lab(), 3, "create").every((c) => changed(report).includes(c)) &&
        changed(report).every((c) => c.endsWith(":create")),
      changed(report).join(),
    );
    assert.deepEqual(await Promise.all(machines().map(units)), since);
  });

  test("pulumi destroy: every file, unit, binary and package of nodeforge's gone, flannel's leftovers too", async () => {
    const worker = machines()[1]!;
    await inMachine(
      worker,
      "touch /etc/cni/net.d/10-flannel.conflist /etc/cni/net.d/99-other.conflist /opt/cni/bin/flannel && " +
        "mkdir -p /run/flannel /var/lib/cni/networks/cbr0 && touch /run/flannel/subnet.env && " +
        "ip link add cni0 type bridge && ip link add flannel.1 type bridge",
    );
    const report = await pulumi().destroy();
    log(`pulumi destroy, 3 machines: ${report.seconds.toFixed(1)} s`);
    assert.equal(
      await inMachine(
        worker,
        "for p in /etc/cni/net.d/10-flannel.conflist /opt/cni/bin/flannel /run/flannel /var/lib/cni/networks/cbr0; " +
          'do [ ! -e "$p" ] || echo "$p"; done; ip -o link show | grep -Eo "(cni0|flannel\\.1):" || true',
      ),
      "",
    );
    await inMachine(worker, "rm /etc/cni/net.d/99-other.conflist && rmdir /etc/cni/net.d /etc/cni");
    for (const machine of machines()) {
      const leftovers = await inMachine(
        machine,
        `for p in ${[...managedPaths(lab()), ...BINARIES, "/etc/kubernetes", "/var/lib/nodeforge", "/etc/systemd/system/containerd.service.d"].join(" ")}; do [ ! -e "$p" ] || echo "$p"; done`,
      );
      assert.equal(leftovers, "", `${machine.name}: left behind`);
      assert.equal(await inMachine(machine, "ls -A /var/lib/containerd"), "", `${machine.name}: containerd data left`);
      assert.notEqual((await machine.run("systemctl cat kubelet.service")).code, 0);
      await inMachine(machine, "! dpkg-query -W -f='${db:Status-Status}' containerd | grep -qx installed");
      // curl and iproute2 came with the machine: destroy must leave them.
      await inMachine(
        machine,
        "dpkg-query -W -f='${db:Status-Status}\\n' curl iproute2 | grep -c installed | grep -qx 2",
      );
    }
    const deployment = (await pulumi().stack.exportStack()).deployment as { resources?: unknown[] };
    assert.deepEqual(deployment.resources ?? [], []);
  });

  test("a step killed halfway (its connection dropped) fails that step; the next up converges", async () => {
    const victim = machines()[1]!;
    const running = pulumi()
      .up()
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    // Wait until apt is installing on the victim, then cut its SSH session and kill the step mid-way.
    for (let i = 0; ; i++) {
      if ((await victim.run("pgrep -x dpkg || pgrep -x apt-get")).code === 0) break;
      assert.ok(i < 1200, "apt never started on the victim");
      await new Promise((r) => setTimeout(r, 100));
    }
    await victim.run("pkill -KILL -f 'sshd: root@notty'; pkill -KILL -x apt-get; pkill -KILL -x dpkg; true");
    const error = await running;
    assert.ok(error instanceof EngineError, `up should fail after the cut, got ${String(error)}`);
    assert.ok(
      errorsOf(error).some((e) => e.startsWith(`${victim.name}-install-containerd: `)),
      errorsOf(error).join("\n"),
    );
    const report = await pulumi().up();
    assert.ok(changed(report).includes(`${victim.name}-install-containerd:create`), changed(report).join());
    for (const machine of machines()) {
      assert.equal((await inMachine(machine, "systemctl is-active containerd.service")).trim(), "active");
      assert.equal((await inMachine(machine, "dpkg --audit")).trim(), "", `${machine.name}: dpkg is consistent`);
    }
    await pulumi().destroy();
  });
});
