/**
 * Stack files with hypervisors and VMs: a VM is a node like any machine (with `vm` saying where it runs), and the
 * checks JSON Schema cannot express: names and addresses unique across machines, VMs and hypervisors, the VMs of a
 * hypervisor within its declared capacity, the image's checksum, the architecture. Each error names the path.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatIssue, parseStack, StackValidationError } from "../../modules/stack";

const FILE = "stacks/vms.yaml";
const KEY_CP = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMBhQa8V9LpMR1rfCvKqZc3Zt/QzkYAeSH7B/+A9OLVb";
const KEY_HV = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJNe/Yg7c1oRkMINU14MgVNZkSYKXaui9Y4cnw9imqAI";
const SHA = "03b8fea715a7ef82eeaf518dee34c72670c57cc7bc40dc1320c04fbf4f15172f";

interface Options {
  image?: string[];
  capacity?: string[];
  vm1?: string[];
  vm2?: string[];
}

/** One bare control plane and one hypervisor with two worker VMs; the options replace or add lines. */
function text(options: Options = {}): string {
  return [
    "cluster:",
    "  name: lab",
    '  kubernetesVersion: "1.36.4"',
    "machines:",
    "  - name: cp-1",
    "    address: 192.0.2.10",
    "    role: control-plane",
    "    os: debian-12",
    `    hostKey: ${KEY_CP}`,
    "hypervisors:",
    "  - name: hv-1",
    "    address: 192.0.2.5",
    `    hostKey: ${KEY_HV}`,
    "    network:",
    "      bridge: br0",
    "    image:",
    ...(options.image ?? ["      url: https://images.example.internal/debian-12.qcow2", `      sha256: ${SHA}`]),
    "    capacity:",
    ...(options.capacity ?? ["      cpus: 8", "      memoryMiB: 16384"]),
    "    vms:",
    "      - name: worker-1",
    "        role: worker",
    "        os: debian-12",
    "        cpus: 2",
    "        memoryMiB: 4096",
    "        diskGiB: 20",
    "        address: 192.0.2.21",
    ...(options.vm1 ?? []).map((l) => `        ${l}`),
    "      - name: worker-2",
    "        role: worker",
    "        os: debian-12",
    "        cpus: 2",
    "        memoryMiB: 4096",
    "        diskGiB: 20",
    "        address: 192.0.2.22",
    ...(options.vm2 ?? []).map((l) => `        ${l}`),
    "",
  ].join("\n");
}

/** The formatted issues of an invalid text (`file:line:col: path: message`). */
function issues(source: string): string[] {
  try {
    parseStack(source, FILE);
  } catch (error) {
    assert.ok(error instanceof StackValidationError, String(error));
    return error.issues.map(formatIssue);
  }
  assert.fail("the stack file was accepted");
}

describe("a stack with a hypervisor and VMs", () => {
  it("parses each VM as a node after the machines, with its hypervisor, sizes and network, and no host key", () => {
    const spec = parseStack(text({ vm1: ["gateway: 192.0.2.1", "nameservers: [192.0.2.1]"] }), FILE);
    assert.deepEqual(
      spec.machines.map((m) => [m.name, m.role, m.vm?.hypervisor]),
      [
        ["cp-1", "control-plane", undefined],
        ["worker-1", "worker", "hv-1"],
        ["worker-2", "worker", "hv-1"],
      ],
    );
    const vm = spec.machines[1]!;
    assert.equal(vm.hostKey, "");
    assert.equal(vm.arch, "amd64");
    assert.equal(vm.addressFamily, 4);
    assert.deepEqual(vm.vm, {
      hypervisor: "hv-1",
      at: ["hypervisors", 0, "vms", 0],
      cpus: 2,
      memoryMiB: 4096,
      diskGiB: 20,
      prefixLength: 24,
      gateway: "192.0.2.1",
      nameservers: ["192.0.2.1"],
    });
    assert.deepEqual(spec.hypervisors, [
      {
        name: "hv-1",
        address: "192.0.2.5",
        hostKey: KEY_HV,
        os: "debian-12",
        arch: "amd64",
        ssh: spec.machines[0]!.ssh,
        driver: "libvirt",
        uri: "qemu:///system",
        storagePool: { name: "nodeforge", path: "/var/lib/libvirt/images/nodeforge" },
        network: { bridge: "br0" },
        image: { format: "qcow2", url: "https://images.example.internal/debian-12.qcow2", sha256: SHA },
        capacity: { cpus: 8, memoryMiB: 16384 },
        vms: ["worker-1", "worker-2"],
      },
    ]);
  });

  it("a stack without hypervisors has none", () => {
    const spec = parseStack(text().split("hypervisors:")[0]!, FILE);
    assert.deepEqual(spec.hypervisors, []);
  });
});

describe("VMs that do not fit or clash", () => {
  it("VMs asking for more cpus and memory than the hypervisor's capacity: both sums named", () => {
    assert.deepEqual(issues(text({ capacity: ["      cpus: 3", "      memoryMiB: 8000"] })), [
      `${FILE}:22:5: hypervisors[0].vms: ask for 4 cpus together; the hypervisor's capacity.cpus is 3`,
      `${FILE}:22:5: hypervisors[0].vms: ask for 8192 MiB of memory together; the hypervisor's capacity.memoryMiB is 8000`,
    ]);
  });

  it("a VM named as a machine, and one named as the hypervisor", () => {
    const source = text().replace("- name: worker-1", "- name: cp-1").replace("- name: worker-2", "- name: hv-1");
    assert.deepEqual(issues(source), [
      `${FILE}:23:15: hypervisors[0].vms[0].name: 'cp-1' is already the name of machines[0]`,
      `${FILE}:30:15: hypervisors[0].vms[1].name: 'hv-1' is already the name of hypervisors[0]`,
    ]);
  });

  it("a VM at a machine's address, and one at the hypervisor's", () => {
    const source = text()
      .replace("address: 192.0.2.21", "address: 192.0.2.10")
      .replace("address: 192.0.2.22", "address: 192.0.2.5");
    assert.deepEqual(issues(source), [
      `${FILE}:29:18: hypervisors[0].vms[0].address: '192.0.2.10' (SSH port 22) is already the address of machines[0]`,
      `${FILE}:36:18: hypervisors[0].vms[1].address: '192.0.2.5' (SSH port 22) is already the address of hypervisors[0]`,
    ]);
  });

  it("an image without a checksum, one with neither url nor path, one with both", () => {
    const url = "      url: https://images.example.internal/debian-12.qcow2";
    assert.deepEqual(issues(text({ image: [url] })), [`${FILE}:16:5: hypervisors[0].image.sha256: is required`]);
    assert.deepEqual(issues(text({ image: [`      sha256: ${SHA}`] })), [
      `${FILE}:16:5: hypervisors[0].image: needs url (to download it) or path (on the hypervisor)`,
    ]);
    assert.deepEqual(issues(text({ image: [url, "      path: /srv/debian-12.qcow2", `      sha256: ${SHA}`] })), [
      `${FILE}:16:5: hypervisors[0].image: has both url and path; name one`,
    ]);
  });

  it("two hypervisors with one name and address, a VM on another SSH port, a pool in nodeforge's state", () => {
    const second = text().split("hypervisors:\n")[1]!.split("    vms:\n")[0]!.replace("storagePool", "storagePool");
    const source = text({ vm2: ["ssh: { port: 2222 }"] })
      .replace("    network:\n", "    storagePool: { path: /var/lib/nodeforge/images }\n    network:\n")
      .replace("hypervisors:\n", `hypervisors:\n${second}    vms: []\n`);
    assert.deepEqual(issues(source), [
      `${FILE}:23:11: hypervisors[1].name: 'hv-1' is already the name of hypervisors[0]`,
      `${FILE}:24:14: hypervisors[1].address: '192.0.2.5' (SSH port 22) is already the address of hypervisors[0]`,
      `${FILE}:26:26: hypervisors[1].storagePool.path: is inside nodeforge's state directory /var/lib/nodeforge, which is root's alone: qemu could not open the disks`,
      `${FILE}:50:22: hypervisors[1].vms[1].ssh.port: is 2222, but a VM's sshd listens on 22 (set ssh: { port: 22 } on the VM)`,
    ]);
  });

  it("a hypervisor on rocky-9: not yet, and why", () => {
    const source = text().replace("    address: 192.0.2.5\n", "    address: 192.0.2.5\n    os: rocky-9\n");
    assert.deepEqual(issues(source), [
      `${FILE}:13:9: hypervisors[0].os: rocky-9 hypervisors are not supported yet: nodeforge installs libvirt and qemu by Debian's package names`,
    ]);
  });

  it("a VM of another architecture than its hypervisor's", () => {
    assert.deepEqual(issues(text({ vm2: ["arch: arm64"] })), [
      `${FILE}:37:15: hypervisors[0].vms[1].arch: is arm64, but hypervisor hv-1 is amd64 (VMs run the hypervisor's architecture)`,
    ]);
  });

  it("a VM without its sizes, and a bad address: the paths inside the hypervisor", () => {
    const source = text().replace("        cpus: 2\n", "").replace("address: 192.0.2.22", "address: 192.0.2.300");
    assert.deepEqual(issues(source), [
      `${FILE}:23:9: hypervisors[0].vms[0].cpus: is required`,
      `${FILE}:35:18: hypervisors[0].vms[1].address: "192.0.2.300" must be an IPv4 address`,
    ]);
  });
});
