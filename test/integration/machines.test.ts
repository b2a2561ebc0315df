/**
 * The test-machine harness itself, on two real systemd-nspawn machines: they boot to `running`, sshd answers with
 * the pinned host key only, apt installs containerd from the local repository, a container runs, the machines reach
 * each other and the host's bridge address but have no default route; and stop() leaves nothing behind.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { shellQuote } from "../../modules/render/shell";
import { kubeBinaryPath } from "../harness/artifact-mirror";
import { startMachines, type Lab, type Machine } from "../harness/machines";
import { labResidue } from "../harness/network";
import { ensureRootfs, isAlive } from "../harness/rootfs";
import { ensureTinyImage } from "../harness/tiny-image";

const log = (line: string): void => console.log(line);

/** Runs a command in the machine and fails the test with its output when it exits non-zero. */
async function sh(machine: Machine, command: string): Promise<string> {
  const result = await machine.run(command);
  assert.equal(result.code, 0, `${machine.name}: ${command} exited ${result.code}:\n${result.stdout}${result.stderr}`);
  return result.stdout;
}

function ssh(lab: Lab, machine: Machine, command: string, knownHosts?: string): ReturnType<typeof spawnSync> {
  const args = lab.sshArgs(machine);
  if (knownHosts)
    args.splice(args.indexOf(`UserKnownHostsFile=${lab.knownHostsPath}`), 1, `UserKnownHostsFile=${knownHosts}`);
  return spawnSync("ssh", [...args, command], { encoding: "utf8", timeout: 30_000 });
}

describe("test machines (systemd-nspawn)", { timeout: 900_000 }, () => {
  let lab: Lab | undefined;
  const work = mkdtempSync(join(tmpdir(), "nodeforge-machines-test-"));
  after(async () => {
    await lab?.stop();
    rmSync(work, { recursive: true, force: true });
  });
  const machines = (): Machine[] => {
    assert.ok(lab, "the machines did not start");
    return lab.machines;
  };

  test("two machines boot to running with sshd answering", async () => {
    const started = Date.now();
    lab = await startMachines(2, { log });
    log(`startMachines(2) took ${Date.now() - started} ms (boot of both ${lab.timings.bootAllMs} ms)`);
    for (const machine of machines()) {
      assert.equal(
        (await sh(machine, "systemctl is-system-running")).trim(),
        "running",
        machine.failedUnitsAtBoot.join(),
      );
      assert.equal((await sh(machine, "hostname")).trim(), machine.name);
      assert.match(machine.hostKey, /^ssh-ed25519 [A-Za-z0-9+/=]+$/);
    }
    const ids = await Promise.all(machines().map((m) => sh(m, "cat /etc/machine-id")));
    assert.notEqual(ids[0], ids[1], "machines cloned from one rootfs must not share a machine id");
  });

  test("ssh works with the pinned host key, and refuses another key", () => {
    for (const machine of machines()) {
      const ok = ssh(lab!, machine, "hostname");
      assert.equal(ok.status, 0, String(ok.stderr));
      assert.equal(String(ok.stdout).trim(), machine.name);
    }
    // The other machine's key pinned for this address: a mismatch must stop the connection.
    const [first, second] = machines();
    const wrong = join(work, "known_hosts_wrong");
    writeFileSync(wrong, `${first!.address} ${second!.hostKey}\n`);
    const refused = ssh(lab!, first!, "true", wrong);
    assert.notEqual(refused.status, 0);
    assert.match(String(refused.stderr), /HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  test("no default route; the machines reach each other and the host's bridge address only", async () => {
    const [first, second] = machines();
    for (const machine of machines()) {
      assert.equal((await sh(machine, "ip route show default")).trim(), "");
      assert.equal((await sh(machine, "ip -6 route show default")).trim(), "");
      const unreachable = await machine.run("ip route get 192.0.2.1");
      assert.notEqual(unreachable.code, 0, "an address outside the lab must have no route");
    }
    const banner = `timeout 5 bash -c 'exec 3<>/dev/tcp/${second!.address}/22 && head -c 8 <&3'`;
    assert.equal(await sh(first!, banner), "SSH-2.0-");
    const mirror = await sh(
      first!,
      `curl -fsS -o /dev/null -w '%{http_code}' ${shellQuote(lab!.mirrorUrl + "/Packages")}`,
    );
    assert.equal(mirror, "200");
  });

  test("bridge and forwarding sysctls can be set inside a machine", async () => {
    for (const machine of machines()) {
      await sh(machine, "sysctl -w net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1");
      assert.equal((await sh(machine, "sysctl -n net.bridge.bridge-nf-call-iptables")).trim(), "1");
      // The host provides them (machines cannot load modules); modprobe inside must agree (nodeforge's preflight).
      await sh(machine, "modprobe overlay && modprobe br_netfilter");
    }
  });

  test("apt installs containerd from the local repository only", async () => {
    const started = Date.now();
    await Promise.all(
      machines().map(async (machine) => {
        const sources = await sh(machine, "cat /etc/apt/sources.list; ls /etc/apt/sources.list.d");
        assert.equal(sources, `deb [trusted=yes] ${lab!.mirrorUrl}/ ./\n`);
        await sh(machine, "apt-get -q update && apt-get -q install -y containerd");
        assert.equal((await sh(machine, "systemctl is-active containerd")).trim(), "active");
      }),
    );
    log(`apt-get update + install containerd on both machines: ${Date.now() - started} ms`);
  });

  test("a container runs in each machine (containerd + runc, same container id in both)", async () => {
    const image = await ensureTinyImage(await ensureRootfs());
    await Promise.all(
      machines().map(async (machine) => {
        machine.copyIn(image.path, "/root/tiny-image.tar");
        await sh(machine, "ctr -n test image import /root/tiny-image.tar");
        const out = await sh(machine, `ctr -n test run --rm ${shellQuote(image.ref)} t1 /bin/busybox echo hello`);
        assert.equal(out.trim(), "hello");
      }),
    );
  });

  test("the artifact mirror serves the lab's builds or test doubles, and a wrong file on request", async () => {
    const [machine] = machines();
    const path = kubeBinaryPath("1.36.4", "amd64", "kubelet");
    const pinned = lab!.artifacts.pins.kubernetes["1.36.4"]!.binaries.amd64.kubelet;
    const fetch = `curl -fsS ${shellQuote(`${lab!.artifactBaseUrl}/v1.36.4/bin/linux/amd64/kubelet`)} | sha256sum`;
    assert.equal((await sh(machine!, fetch)).split(" ")[0], pinned);
    assert.equal(lab!.artifacts.sha256[path], pinned);
    const restore = lab!.artifacts.serveWrongFile(path);
    assert.notEqual((await sh(machine!, fetch)).split(" ")[0], pinned);
    restore();
    assert.equal((await sh(machine!, fetch)).split(" ")[0], pinned);
    // crictl ships as a tarball with `crictl` at its top, as install-kubelet expects: the lab's build of the
    // release .ci/install-cluster-components makes (1.36.0), a double of the others.
    for (const [version, says] of [
      ["1.36.0", /^crictl version v1\.36\.0$/m],
      ["1.35.0", /^nodeforge test double: crictl --version$/m],
    ] as const) {
      const tarball = `${lab!.crictlBaseUrl}/v${version}/crictl-v${version}-linux-amd64.tar.gz`;
      const unpack = `cd "$(mktemp -d)" && curl -fsSLo c.tgz ${shellQuote(tarball)} && sha256sum c.tgz && tar -xzf c.tgz crictl`;
      const out = await sh(machine!, `${unpack} && ./crictl --version`);
      assert.equal(out.split(" ")[0], lab!.artifacts.pins.crictl[version]!.amd64);
      assert.match(out, says);
    }
  });

  test("stop() ends every process and removes namespaces, veths and the bridge", async () => {
    const stopped = lab!;
    const pids = stopped.machines.flatMap((m) => [m.pid, m.leaderPid]);
    const started = Date.now();
    await stopped.stop();
    log(`stop() took ${Date.now() - started} ms`);
    for (const pid of pids) assert.equal(isAlive(pid), false, `pid ${pid} still runs`);
    const pgrep = spawnSync("pgrep", ["-f", `systemd-nspawn.*--machine=nf${process.pid}m`], { encoding: "utf8" });
    assert.equal(pgrep.stdout.trim(), "");
    const netns = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
    for (const machine of stopped.machines) assert.ok(!netns.includes(machine.netns), netns);
    const residue = await labResidue();
    assert.ok(!residue.links.includes(stopped.network.bridge), residue.links.join());
    for (const link of stopped.network.links) assert.ok(!residue.links.includes(link.hostVeth));
    assert.equal(existsSync(stopped.clientKeyPath), false);
  });
});
