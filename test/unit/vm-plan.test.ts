/**
 * VMs in the plan (stacks/example-vms.yaml): the hypervisor's steps come first, each VM's node steps after the step
 * that makes it; what those steps write is checked by the tools that read it: libvirt's virt-xml-validate for the
 * domain XML, cloud-init's own schema check for user-data, shellcheck and dash for the scripts. A VM's private host
 * key is only in its user-data, a secret file.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { parse } from "yaml";
import {
  fileContent,
  generateClusterSecrets,
  isSecretFile,
  planCluster,
  scriptText,
  type ClusterSecrets,
  type PlannedStep,
} from "../../modules/plan";
import { projectRoot } from "../../modules/project-root";
import { loadStackFile, parseStack } from "../../modules/stack";
import { assertCleanShell } from "../harness/shell-check";

const FILE = join(projectRoot(), "stacks", "example-vms.yaml");
const stack = loadStackFile(FILE);
const plan = planCluster(stack);
const secrets = generateClusterSecrets(stack);
const work = mkdtempSync(join(tmpdir(), "nodeforge-vm-plan-"));
after(() => rmSync(work, { recursive: true, force: true }));

function step(id: string, steps: PlannedStep[] = plan): PlannedStep {
  const found = steps.find((s) => s.id === id);
  assert.ok(found, `no step ${id}`);
  return found;
}

function file(planned: PlannedStep, suffix: string, s: ClusterSecrets = secrets): string {
  const found = planned.files.find((f) => f.path.endsWith(suffix));
  assert.ok(found, `${planned.id}: no file ending ${suffix}`);
  return fileContent(found, s);
}

function written(name: string, content: string): string {
  const path = join(work, name);
  writeFileSync(path, content);
  return path;
}

describe("a hypervisor and its VMs in the plan", () => {
  it("prepares the hypervisor, then makes each VM, then runs the VM's node steps after its VM step", () => {
    const onHypervisor = plan.filter((s) => s.machine === "hv-1").map((s) => [s.id, s.after]);
    assert.deepEqual(onHypervisor, [
      ["hv-1-prepare-hypervisor", []],
      ["hv-1-vm-worker-1", ["hv-1-prepare-hypervisor"]],
      ["hv-1-vm-worker-2", ["hv-1-prepare-hypervisor"]],
    ]);
    assert.deepEqual(step("worker-1-preflight").after, ["hv-1-vm-worker-1"]);
    assert.deepEqual(step("worker-2-preflight").after, ["hv-1-vm-worker-2"]);
    assert.deepEqual(step("cp-1-preflight").after, []);
    // The VMs then join as workers like any machine.
    assert.ok(plan.some((s) => s.id === "worker-1-kubeadm-join"));
  });

  it("keeps the VM's private host key in its user-data alone: a secret file, in no script", () => {
    const vm = step("hv-1-vm-worker-1");
    const privateKey = secrets.vms["worker-1"]!.hostPrivateKey;
    const userData = vm.files.find((f) => f.path.endsWith("/user-data"))!;
    assert.equal(isSecretFile(userData), true);
    assert.equal(userData.mode, "0600");
    assert.ok(fileContent(userData, secrets).includes(JSON.stringify(privateKey)));
    for (const planned of plan) {
      const script = scriptText(planned.script, secrets);
      assert.ok(!script.includes("PRIVATE KEY"), `${planned.id}: a private key in the script`);
      for (const f of planned.files.filter((x) => !isSecretFile(x))) {
        assert.ok(!fileContent(f, secrets).includes("PRIVATE KEY"), `${planned.id}: ${f.path}`);
      }
    }
    // What the VM step waits for: its public host key.
    assert.ok(scriptText(vm.script, secrets).includes(secrets.vms["worker-1"]!.hostPublicKey));
  });

  it("writes a domain that libvirt's schema accepts", () => {
    for (const vm of ["worker-1", "worker-2"]) {
      const path = written(`${vm}.xml`, file(step(`hv-1-vm-${vm}`), "/domain.xml"));
      const run = spawnSync("virt-xml-validate", [path, "domain"], { encoding: "utf8" });
      assert.equal(run.status, 0, run.stderr + run.stdout);
    }
  });

  it("writes user-data that cloud-init's schema accepts, for root and for a sudo user with apt sources", () => {
    const sudoUser = parseStack(
      readExample()
        .replace("ssh:\n  user: root\n", "ssh:\n  user: ops\n  sudo: true\n")
        .replace(
          "        nameservers: [192.0.2.1]\n      - name: worker-2",
          '        nameservers: [192.0.2.1]\n        aptSources: ["deb [trusted=yes] http://192.0.2.1/debian ./"]\n      - name: worker-2',
        ),
      "vms-ops.yaml",
    );
    const opsPlan = planCluster(sudoUser);
    const opsSecrets = generateClusterSecrets(sudoUser);
    const cases = [
      ["root", file(step("hv-1-vm-worker-1"), "/user-data")],
      ["ops", file(step("hv-1-vm-worker-1", opsPlan), "/user-data", opsSecrets)],
    ] as const;
    for (const [name, content] of cases) {
      const path = written(`user-data-${name}`, content);
      const run = spawnSync("cloud-init", ["schema", "--config-file", path], { encoding: "utf8" });
      assert.equal(run.status, 0, `${name}: ${run.stderr}${run.stdout}`);
    }
    const ops = parse(cases[1][1]) as {
      users: { name: string; sudo: string }[];
      write_files: { path: string; content: string }[];
    };
    assert.deepEqual(
      ops.users.map((u) => [u.name, u.sudo]),
      [["ops", "ALL=(ALL) NOPASSWD:ALL"]],
    );
    assert.equal(
      ops.write_files.find((f) => f.path === "/etc/apt/sources.list")?.content,
      "deb [trusted=yes] http://192.0.2.1/debian ./\n",
    );
    const root = parse(cases[0][1]) as { disable_root: boolean; ssh_keys: Record<string, string> };
    assert.equal(root.disable_root, false);
    assert.equal(root.ssh_keys["ed25519_public"], secrets.vms["worker-1"]!.hostPublicKey);
  });

  it("writes network-config v2: the static address on the interface with the VM's MAC, gateway and DNS", () => {
    const vm = step("hv-1-vm-worker-2");
    const config = parse(file(vm, "/network-config")) as {
      version: number;
      ethernets: {
        eth0: { match: { macaddress: string }; addresses: string[]; routes: unknown[]; nameservers: unknown };
      };
    };
    const mac = /<mac address='([0-9a-f:]+)'\/>/.exec(file(vm, "/domain.xml"))?.[1];
    assert.equal(config.version, 2);
    assert.equal(config.ethernets.eth0.match.macaddress, mac);
    assert.deepEqual(config.ethernets.eth0.addresses, ["192.0.2.42/24"]);
    assert.deepEqual(config.ethernets.eth0.routes, [{ to: "0.0.0.0/0", via: "192.0.2.1" }]);
    assert.deepEqual(config.ethernets.eth0.nameservers, { addresses: ["192.0.2.1"] });
  });

  it("writes scripts that shellcheck and dash accept", () => {
    for (const planned of plan.filter((s) => s.machine === "hv-1")) {
      assertCleanShell(planned.id, scriptText(planned.script, secrets));
      assertCleanShell(`${planned.id} delete`, planned.deleteScript);
      execFileSync("dash", ["-n", written(`${planned.id}.sh`, scriptText(planned.script, secrets))]);
    }
  });

  it("changing one VM's memory changes only its domain and its restart line", () => {
    const bigger = parseStack(
      readExample().replace(
        "memoryMiB: 8192\n        diskGiB: 40\n        address: 192.0.2.42",
        "memoryMiB: 12288\n        diskGiB: 40\n        address: 192.0.2.42",
      ),
      "vms-bigger.yaml",
    );
    const changed = planCluster(bigger).filter((s) => {
      const before = step(s.id);
      return (
        JSON.stringify([s.files.map((f) => "text" in f.content && f.content.text), s.triggers]) !==
        JSON.stringify([before.files.map((f) => "text" in f.content && f.content.text), before.triggers])
      );
    });
    assert.deepEqual(
      changed.map((s) => s.id),
      ["hv-1-vm-worker-2"],
    );
    assert.deepEqual(changed[0]!.triggers, ["restarts on change: 4 cpus, 12288 MiB memory"]);
  });
});

function readExample(): string {
  return readFileSync(FILE, "utf8");
}
