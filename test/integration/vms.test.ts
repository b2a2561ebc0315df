/**
 * VMs made by `pulumi up` (the real engine) on a real hypervisor: this machine through a loopback sshd, a private
 * libvirtd, qemu under TCG (no KVM here), the lab's Debian 12 image (a real kernel, systemd as PID 1, cgroup v2,
 * cloud-init). Two VMs join the lab's real cluster (kubeadm, flannel) as workers beside its nspawn control plane:
 *
 * - a wrong image checksum and an unreachable hypervisor fail `up` with what is wrong, and leave no domain, disk,
 *   seed or image behind; the next `up` converges from there;
 * - each VM answers SSH with the host key nodeforge generated for it (state has only its public half outside the
 *   secrets), runs containerd and the kubelet on cgroup v2, and its Node goes Ready;
 * - a preview after is empty; one VM's memory changed: only its VM step updates, only it restarts;
 * - `pulumi destroy` drains and resets the VMs' nodes, then leaves no domain, disk, seed, pool or image.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { KUBERNETES_BUILD_VERSION } from "../harness/kubernetes-build";
import { labClusterYaml, labStackYaml, setLabSiteNetwork } from "../harness/lab-stack";
import { useMachines } from "../harness/machines";
import { closedPort } from "../harness/offline-target";
import { inMachine } from "../harness/provision";
import { changed, EngineError, engineStack, type EngineStack } from "../harness/pulumi-engine";
import { startVmHost, type LabVm, type VmHost } from "../harness/vm-host";

const KUBECTL = "kubectl --kubeconfig /etc/kubernetes/admin.conf";
const VMS: LabVm[] = [{ name: "vm-1" }, { name: "vm-2" }];
const WRONG_SHA = "0".repeat(64);

describe(
  "VMs on a hypervisor, made and removed by pulumi up and destroy, join the cluster",
  { timeout: 3_000_000 },
  () => {
    const lab = useMachines(1, { names: ["cp-1"], imageRegistry: true });
    let host: VmHost;
    let engine: EngineStack | undefined;
    const work = mkdtempSync(join(tmpdir(), "nodeforge-vms-"));
    before(async () => {
      host = await startVmHost(lab());
    });
    after(async () => {
      await engine?.remove();
      await host?.stop();
      rmSync(work, { recursive: true, force: true });
    });
    const stackYaml = (vms: LabVm[] = VMS): string =>
      labStackYaml(lab(), { kubernetesVersion: KUBERNETES_BUILD_VERSION, extra: labClusterYaml(lab()) }) +
      host.yaml(vms) +
      "\n";
    const domains = async (): Promise<string[]> =>
      (await host.libvirt.virsh(["list", "--all", "--name"])).stdout.split("\n").filter((l) => l.trim() !== "");
    const poolFiles = (): string[] => (existsSync(host.poolDir) ? readdirSync(host.poolDir).sort() : []);
    /** The public host key nodeforge pinned for the VM: its step's script waits for it (state outside the secrets). */
    const pinned = new Map<string, string>();
    const pinnedKey = async (vm: string): Promise<string> => {
      const known = pinned.get(vm);
      if (known) return known;
      const exported = await engine!.stack.exportStack();
      const resources = (
        exported.deployment as { resources: { urn: string; outputs?: { step?: { script?: string } } }[] }
      ).resources;
      const script = resources.find((r) => r.urn.endsWith(`::lab-host-vm-${vm}`))?.outputs?.step?.script ?? "";
      const key = /"\$nf_seen" = '?(ssh-ed25519 [A-Za-z0-9+/=]+)'? \]/.exec(script)?.[1];
      assert.ok(key, `no pinned key in ${vm}'s step`);
      pinned.set(vm, key);
      return key;
    };
    /** Runs a command on the VM over ssh, the VM's host key pinned (known_hosts holds only it). */
    const onVm = async (vm: string, index: number, command: string): Promise<string> => {
      const knownHosts = join(work, `known_hosts-${vm}`);
      const line = `${host.address(index)} ${await pinnedKey(vm)}`;
      writeFileSync(knownHosts, `${line}\n`);
      const options = [
        "StrictHostKeyChecking=yes",
        `UserKnownHostsFile=${knownHosts}`,
        "BatchMode=yes",
        "ConnectTimeout=20",
      ];
      try {
        const args = ["-i", lab().clientKeyPath, ...options.flatMap((o) => ["-o", o]), `root@${host.address(index)}`];
        return execFileSync("ssh", [...args, command], { encoding: "utf8", timeout: 120_000 }).trim();
      } catch (error) {
        throw new Error(`ssh ${vm} (known_hosts: ${line}): ${(error as Error).message}`);
      }
    };

    test("a wrong image checksum, then an unreachable hypervisor: up fails saying so, nothing is made", async () => {
      await setLabSiteNetwork(lab());
      const wrong = stackYaml().replace(`sha256: "${host.image.sha256}"`, `sha256: "${WRONG_SHA}"`);
      engine = await engineStack(wrong, lab().clientPrivateKey, host.secrets);
      const failed = await engine.up().then(
        () => assert.fail("up succeeded with a wrong image checksum"),
        (error: EngineError) => error,
      );
      const messages = failed.report.errors.map((e) => e.message).join("\n");
      assert.match(
        messages,
        new RegExp(
          `lab-host: prepare-hypervisor: sha256 mismatch for ${host.image.path}: expected ${WRONG_SHA}, got ${host.image.sha256}`,
        ),
      );
      assert.deepEqual(await domains(), []);
      assert.deepEqual(poolFiles(), []);

      const port = await closedPort();
      engine.writeStackFile(stackYaml().replace(`port: ${host.sshd.port},`, `port: ${port},`));
      const unreachable = await engine.up().then(
        () => assert.fail("up succeeded with an unreachable hypervisor"),
        (error: EngineError) => error,
      );
      assert.match(
        unreachable.report.errors.map((e) => e.message).join("\n"),
        new RegExp(`lab-host: .*connection to 127\\.0\\.0\\.1:${port} refused`),
      );
      assert.deepEqual(await domains(), []);
    });

    test("pulumi up: two VMs made and pinned from their first boot, provisioned, Ready in the cluster", async () => {
      engine!.writeStackFile(stackYaml());
      const started = Date.now();
      const up = await engine!.up();
      console.log(`pulumi up, 1 nspawn control plane + 2 VMs (qemu TCG): ${up.seconds.toFixed(1)} s`);
      assert.deepEqual((await domains()).sort(), ["vm-1", "vm-2"]);
      assert.ok(
        poolFiles().some((f) => f.startsWith("nodeforge-base-")),
        poolFiles().join(" "),
      );
      for (const [i, vm] of VMS.entries()) {
        assert.equal(await onVm(vm.name, i, "hostname"), vm.name);
        assert.equal(await onVm(vm.name, i, "systemctl is-active containerd"), "active");
        assert.equal(await onVm(vm.name, i, "systemctl is-active kubelet"), "active");
        assert.equal(await onVm(vm.name, i, "stat -fc %T /sys/fs/cgroup"), "cgroup2fs");
        assert.equal(await onVm(vm.name, i, "readlink /proc/1/exe"), "/usr/lib/systemd/systemd");
      }
      const cp = lab().machines[0]!;
      for (let waited = 0; ; waited += 3) {
        const ready = await inMachine(
          cp,
          `${KUBECTL} get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}'`,
        );
        if (VMS.every((vm) => ready.includes(`${vm.name}=True`))) break;
        assert.ok(waited < 900, `VM nodes not Ready after 900 s:\n${ready}`);
        await new Promise((resolve) => setTimeout(resolve, 3000));
      }
      console.log(`VM nodes Ready ${((Date.now() - started) / 1000).toFixed(1)} s after pulumi up started`);
    });

    test("a preview after up has no changes", async () => {
      await engine!.preview({ expectNoChanges: true });
    });

    test("one VM's memory changed: only its step updates, only it restarts", async () => {
      const bootId = (i: number) => onVm(VMS[i]!.name, i, "cat /proc/sys/kernel/random/boot_id");
      const bootIds = [await bootId(0), await bootId(1)];
      const bigger = [VMS[0]!, { ...VMS[1]!, memoryMiB: 1792 }];
      engine!.writeStackFile(stackYaml(bigger));
      const preview = await engine!.preview({ diff: true });
      assert.deepEqual(changed(preview), ["lab-host-vm-vm-2:update"]);
      assert.match(preview.output, /restarts on change: 1 cpus, 1536 MiB memory.*\n?.*1792 MiB memory/s);
      await engine!.up();
      const after = [await bootId(0), await bootId(1)];
      assert.equal(after[0], bootIds[0], "vm-1 restarted");
      assert.notEqual(after[1], bootIds[1], "vm-2 did not restart");
      assert.match((await host.libvirt.virsh(["dominfo", "vm-2"])).stdout, /Max memory: +1835008 KiB/);
      await engine!.preview({ expectNoChanges: true });
    });

    test("pulumi destroy: no domain, disk, seed, pool or image left", async () => {
      await engine!.destroy();
      assert.deepEqual(await domains(), []);
      assert.deepEqual(poolFiles(), []);
      const pool = await host.libvirt.virsh(["pool-info", host.poolName]);
      assert.notEqual(pool.code, 0, "the pool nodeforge defined is still defined");
    });
  },
);
