/**
 * External etcd on three real systemd machines (systemd-nspawn, Debian 12): each installs the etcd release tarball
 * (3.6.8, built by .ci/install-cluster-components from etcd's Go modules in the release's layout) from the lab's
 * artifact mirror, checked against its sha256. The EtcdPki provider (after Pulumi's closure serialization, as the engine runs it) issues the
 * certificates, RemoteFile writes each member's files over SSH and the member script runs over SSH as root, all three
 * in parallel as the Pulumi graph would. Then: TLS cluster health, replication, refusal of plain HTTP and of clients
 * without a certificate, a member stopped and started again, idempotent re-runs and the delete script.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import {
  ETCD_CA_FILE,
  ETCD_CLIENT_CERT_FILE,
  ETCD_CLIENT_KEY_FILE,
  ETCD_UNIT_NAME,
  etcdClientUrl,
  etcdClientUrls,
  etcdDataDir,
  etcdMemberDeleteScript,
  etcdMemberFiles,
  etcdMemberScript,
  type EtcdCluster,
  type EtcdRelease,
} from "../../modules/etcd";
import { etcdPkiProvider, type EtcdPkiOutputs, type EtcdPkiProvider } from "../../modules/pki";
import { closeAllSessions, remoteFileProvider, runRemote, type RemoteFileOutputs } from "../../modules/remote";
import { useMachines, type Lab, type Machine } from "../harness/machines";
import { activeSince, inMachine } from "../harness/provision";

const NAMES = ["etcd-1", "etcd-2", "etcd-3"];
const log = (line: string): void => console.log(line);

/** The provider as the engine gets it: serialized by Pulumi's closure serializer, then loaded. */
async function serializedPkiProvider(): Promise<EtcdPkiProvider> {
  // A local, as the engine's copy is: a property read through the module object would be serialized as a getter.
  const original = etcdPkiProvider;
  const { text, exportName } = await pulumi.runtime.serializeFunction(() => original, { allowSecrets: true });
  // Inside the package, so that the provider's require("node-forge") resolves as it does for the engine.
  const dir = mkdtempSync(join(__dirname, ".serialized-"));
  try {
    const file = join(dir, "provider.js");
    writeFileSync(file, text);
    const loaded = (require(file) as Record<string, () => EtcdPkiProvider>)[exportName];
    assert.ok(loaded, "serialized provider exports its factory");
    return loaded();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** etcdctl on a machine with the client certificate nodeforge wrote; `endpoints` default: every member. */
function etcdctl(cluster: EtcdCluster, args: string, endpoints = etcdClientUrls(cluster).join(",")): string {
  return (
    `ETCDCTL_API=3 etcdctl --endpoints=${endpoints} --cacert=${ETCD_CA_FILE} --cert=${ETCD_CLIENT_CERT_FILE} ` +
    `--key=${ETCD_CLIENT_KEY_FILE} --dial-timeout=3s --command-timeout=5s ${args}`
  );
}

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = process.hrtime.bigint();
  const value = await run();
  return { value, ms: Number(process.hrtime.bigint() - started) / 1e6 };
}

describe("external etcd: three TLS members on real machines", { timeout: 900_000 }, () => {
  const lab = useMachines(3, { names: NAMES });
  const machines = (): Machine[] => lab().machines;
  let cluster: EtcdCluster;
  let pki: EtcdPkiOutputs;
  const files = new Map<string, RemoteFileOutputs[]>();
  /** The release as the lab's mirror serves it: the build's tarball, the checksum of what is served. */
  const release = (): EtcdRelease => {
    const { version, sha256 } = lab().artifacts.pins.etcd;
    const directory = `etcd-v${version}-linux-amd64`;
    return {
      version,
      url: `${lab().artifacts.etcdBaseUrl}/v${version}/${directory}.tar.gz`,
      sha256: sha256.amd64,
      directory,
    };
  };

  before(async () => {
    cluster = { name: "lab-etcd", members: machines().map((m) => ({ name: m.name, address: m.address })) };
    const provider = await serializedPkiProvider();
    const check = await provider.check({} as never, { clusterName: cluster.name, members: cluster.members });
    assert.deepEqual(check.failures ?? [], []);
    pki = (await provider.create(check.inputs!)).outs;
  });
  after(() => closeAllSessions());

  async function runScript(l: Lab, machine: Machine, script: string): Promise<void> {
    const result = await runRemote(l.target(machine), script);
    assert.equal(result.code, 0, `${machine.name}: exited ${result.code}:\n${result.stdout}${result.stderr}`);
  }

  test("files written over SSH and member scripts run in parallel form a healthy cluster", async () => {
    const started = Date.now();
    await Promise.all(
      machines().map(async (machine) => {
        const outs: RemoteFileOutputs[] = [];
        for (const file of etcdMemberFiles(machine.name, cluster, pki)) {
          outs.push((await remoteFileProvider.create({ target: lab().target(machine), ...file })).outs);
        }
        files.set(machine.name, outs);
      }),
    );
    const written = Date.now();
    const runs = await Promise.all(
      machines().map(async (machine) => {
        const { ms } = await timed(() =>
          runScript(lab(), machine, etcdMemberScript(machine.name, cluster, pki, release())),
        );
        return ms;
      }),
    );
    log(
      `etcd: files written in ${((written - started) / 1000).toFixed(1)} s; member scripts (install the release, ` +
        `start, wait for health) took ${runs.map((ms) => (ms / 1000).toFixed(1)).join(" / ")} s; ` +
        `cluster formed ${((Date.now() - started) / 1000).toFixed(1)} s after the first file write`,
    );
    for (const machine of machines()) {
      assert.equal((await inMachine(machine, `systemctl is-active ${ETCD_UNIT_NAME}`)).trim(), "active");
      assert.equal((await inMachine(machine, `systemctl is-enabled ${ETCD_UNIT_NAME}`)).trim(), "enabled");
      // The pinned release runs: 3.6, which kubeadm accepts as an external etcd.
      assert.match(await inMachine(machine, "/usr/local/bin/etcd --version"), /^etcd Version: 3\.6\.8$/m);
      assert.equal((await machine.run("systemctl is-active etcd.service")).stdout.trim(), "inactive");
      // etcd runs as the etcd user; keys are root's 0600 on disk.
      assert.equal((await inMachine(machine, `systemctl show -p User --value ${ETCD_UNIT_NAME}`)).trim(), "etcd");
      assert.equal(
        (await inMachine(machine, "stat -c '%a %U %G' /etc/etcd/pki/member.key /etc/etcd/pki/client.key")).trim(),
        "600 root root\n600 root root",
      );
      assert.equal((await inMachine(machine, `stat -c '%a %U' ${etcdDataDir(cluster)}`)).trim(), "700 etcd");
      const verify = await machine.run(`systemd-analyze verify ${ETCD_UNIT_NAME} 2>&1`);
      assert.equal(verify.stdout.trim(), "", `${machine.name}: systemd-analyze verify`);
    }
  });

  test("endpoint health --cluster over TLS reports three healthy members", async () => {
    const first = machines()[0]!;
    const health = await inMachine(first, `${etcdctl(cluster, "endpoint health --cluster")} 2>&1`);
    const healthy = health.split("\n").filter((line) => /is healthy/.test(line));
    assert.equal(healthy.length, 3, health);
    for (const machine of machines()) assert.match(health, new RegExp(`https://${machine.address}:2379 is healthy`));
    const members = await inMachine(first, etcdctl(cluster, "member list -w simple"));
    assert.equal(members.trim().split("\n").length, 3, members);
    for (const machine of machines()) {
      assert.match(members, new RegExp(`started, ${machine.name}, https://${machine.address}:2380, https://`));
    }
  });

  test("a value put on one member is read on another", async () => {
    const [one, two] = machines();
    await inMachine(
      one!,
      etcdctl(cluster, "put /nodeforge/test hello-from-etcd-1", etcdClientUrl(cluster.members[0]!)),
    );
    const got = await inMachine(
      two!,
      etcdctl(cluster, "get --print-value-only /nodeforge/test", etcdClientUrl(cluster.members[1]!)),
    );
    assert.equal(got.trim(), "hello-from-etcd-1");
  });

  test("plain HTTP and a client without a certificate are refused", async () => {
    const [one] = machines();
    const member = cluster.members[1]!;
    const http = await one!.run(
      `ETCDCTL_API=3 etcdctl --endpoints=http://${member.address}:2379 --dial-timeout=3s --command-timeout=5s get /nodeforge/test`,
    );
    assert.notEqual(http.code, 0, `plain http answered: ${http.stdout}`);
    const noCert = await one!.run(
      `ETCDCTL_API=3 etcdctl --endpoints=https://${member.address}:2379 --cacert=${ETCD_CA_FILE} --dial-timeout=3s --command-timeout=5s get /nodeforge/test`,
    );
    assert.notEqual(noCert.code, 0, `a client without a certificate was answered: ${noCert.stdout}`);
    assert.doesNotMatch(noCert.stdout, /hello-from-etcd-1/);
    // The member says why: Go's TLS server rejected both connections.
    const journal = await lab().machines[1]!.journal(["-u", ETCD_UNIT_NAME]);
    assert.match(journal, /first record does not look like a TLS handshake/);
    assert.match(journal, /client didn't provide a certificate/);
  });

  test("with one member stopped the other two still serve reads and writes; started again it catches up", async () => {
    const [one, two, three] = machines();
    const twoEndpoints = [cluster.members[0]!, cluster.members[1]!].map(etcdClientUrl).join(",");
    await inMachine(three!, `systemctl stop ${ETCD_UNIT_NAME}`);
    const write = await timed(() =>
      inMachine(one!, etcdctl(cluster, "put /nodeforge/failover written-while-etcd-3-down", twoEndpoints)),
    );
    const read = await timed(() =>
      inMachine(two!, etcdctl(cluster, "get --print-value-only /nodeforge/failover", twoEndpoints)),
    );
    assert.equal(read.value.trim(), "written-while-etcd-3-down");
    // Linearizable read and write through the two members left (etcdctl start-up included).
    log(
      `etcd with one member down: put ${write.ms.toFixed(0)} ms, get ${read.ms.toFixed(0)} ms (etcdctl process included)`,
    );
    const health = await one!.run(`${etcdctl(cluster, "endpoint health")} 2>&1`);
    assert.match(health.stdout, new RegExp(`https://${cluster.members[2]!.address}:2379 is unhealthy`));

    const restarted = await timed(async () => {
      await inMachine(three!, `systemctl start ${ETCD_UNIT_NAME}`);
      for (let i = 0; ; i++) {
        const result = await three!.run(`${etcdctl(cluster, "endpoint health --cluster")} 2>&1`);
        if (result.code === 0 && result.stdout.split("\n").filter((l) => /is healthy/.test(l)).length === 3) return;
        assert.ok(i < 60, `cluster not healthy after restart: ${result.stdout}`);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    });
    log(`etcd-3 started again: cluster healthy after ${restarted.ms.toFixed(0)} ms`);
    const caughtUp = await inMachine(
      three!,
      etcdctl(cluster, "get --print-value-only /nodeforge/failover", etcdClientUrl(cluster.members[2]!)),
    );
    assert.equal(caughtUp.trim(), "written-while-etcd-3-down");
  });

  test("re-running every file write and script changes nothing and restarts no member", async () => {
    const since = await Promise.all(machines().map((m) => activeSince(m, ETCD_UNIT_NAME)));
    const stamp =
      "stat -c '%n %Y' /etc/etcd/pki/* /etc/etcd/nodeforge-etcd.yaml /etc/systemd/system/nodeforge-etcd.service";
    const mtimes = await Promise.all(machines().map((m) => inMachine(m, stamp)));
    // The provider's check + update, as `pulumi up` with unchanged inputs would call them (the PKI likewise).
    const provider = await serializedPkiProvider();
    const pkiDiff = await provider.diff("pki", pki, { clusterName: cluster.name, members: cluster.members });
    assert.equal(pkiDiff.changes, false);
    await Promise.all(
      machines().map(async (machine) => {
        const news = etcdMemberFiles(machine.name, cluster, pki);
        const olds = files.get(machine.name)!;
        for (const [i, file] of news.entries()) {
          const inputs = { target: lab().target(machine), ...file };
          const diff = await remoteFileProvider.diff("", olds[i]!, inputs);
          assert.equal(diff.changes, false, `${machine.name}: ${file.path}`);
          await remoteFileProvider.update("", olds[i]!, inputs);
        }
      }),
    );
    const rerun = await timed(() =>
      Promise.all(machines().map((m) => runScript(lab(), m, etcdMemberScript(m.name, cluster, pki, release())))),
    );
    log(`etcd: re-running the three member scripts took ${(rerun.ms / 1000).toFixed(2)} s`);
    assert.deepEqual(await Promise.all(machines().map((m) => activeSince(m, ETCD_UNIT_NAME))), since);
    assert.deepEqual(await Promise.all(machines().map((m) => inMachine(m, stamp))), mtimes);
    // Even a fresh rewrite of identical files (state lost: RemoteFile create) restarts nothing.
    await Promise.all(
      machines().map(async (machine) => {
        for (const file of etcdMemberFiles(machine.name, cluster, pki)) {
          await remoteFileProvider.create({ target: lab().target(machine), ...file });
        }
        await runScript(lab(), machine, etcdMemberScript(machine.name, cluster, pki, release()));
      }),
    );
    assert.deepEqual(await Promise.all(machines().map((m) => activeSince(m, ETCD_UNIT_NAME))), since);
  });

  test("the delete script removes the unit, configuration, certificates, data, programs and user", async () => {
    await Promise.all(machines().map((m) => runScript(lab(), m, etcdMemberDeleteScript(m.name, cluster))));
    for (const machine of machines()) {
      await inMachine(
        machine,
        [
          `test ! -e /etc/systemd/system/${ETCD_UNIT_NAME}`,
          `test ! -e /etc/systemd/system/multi-user.target.wants/${ETCD_UNIT_NAME}`,
          "test ! -e /etc/etcd/pki",
          "test ! -e /etc/etcd/nodeforge-etcd.yaml",
          `test ! -e ${etcdDataDir(cluster)}`,
          "test ! -e /var/lib/etcd",
          "test ! -e /etc/systemd/system/etcd.service",
          "test ! -e /usr/local/bin/etcd",
          "test ! -e /usr/local/bin/etcdctl",
          "test ! -e /usr/local/bin/etcdutl",
          "! id -u etcd 2>/dev/null",
          "test ! -e /var/lib/nodeforge",
          `! systemctl is-active --quiet ${ETCD_UNIT_NAME}`,
        ].join(" && "),
      );
      // curl came with the machine: destroy leaves it.
      await inMachine(machine, "command -v curl >/dev/null");
      assert.equal((await machine.run(`systemctl is-enabled ${ETCD_UNIT_NAME}`)).stdout.trim(), "");
    }
    // Running it again is harmless.
    await Promise.all(machines().map((m) => runScript(lab(), m, etcdMemberDeleteScript(m.name, cluster))));
  });
});
