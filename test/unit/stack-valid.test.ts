/**
 * Valid stack files: the example loads, defaults are filled in, derived values are computed, and the schema
 * documents every property (description, examples, defaults that match modules/stack/defaults.ts).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { isDeepStrictEqual } from "node:util";
import Ajv2020 from "ajv/dist/2020";
import { projectRoot } from "../../modules/project-root";
import * as stackDefaults from "../../modules/stack/defaults";
import { loadStackFile, parseStack, type MachineSpec, type StackSpec } from "../../modules/stack";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const ROOT = projectRoot();
const SCHEMA_LINE = "# yaml-language-server: $schema=../schemas/stack.schema.json";
const HOST_KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMBhQa8V9LpMR1rfCvKqZc3Zt/QzkYAeSH7B/+A9OLVb";
const HOST_KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJNe/Yg7c1oRkMINU14MgVNZkSYKXaui9Y4cnw9imqAI";

function readSchema(): JsonObject {
  return JSON.parse(readFileSync(join(ROOT, "schemas", "stack.schema.json"), "utf8")) as JsonObject;
}

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** JSON pointer segment escaping (RFC 6901). */
function pointerSegment(key: string): string {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}

/** Calls visit(node, pointer) for every object in a JSON document, depth first. */
function walk(node: Json, pointer: string, visit: (node: JsonObject, pointer: string) => void): void {
  if (Array.isArray(node)) {
    node.forEach((child, i) => walk(child, `${pointer}/${i}`, visit));
  } else if (isObject(node)) {
    visit(node, pointer);
    for (const [key, child] of Object.entries(node)) walk(child, `${pointer}/${pointerSegment(key)}`, visit);
  }
}

/** Pointers of every property schema (every child of a `properties` keyword), including those under $defs. */
function propertyPointers(schema: JsonObject): string[] {
  const found: string[] = [];
  walk(schema, "", (node, pointer) => {
    // Skip `examples` and `default` values: they are data, not schemas.
    if (/\/(examples|default)(\/|$)/.test(pointer)) return;
    const properties = node.properties;
    if (!isObject(properties)) return;
    for (const key of Object.keys(properties)) found.push(`${pointer}/properties/${pointerSegment(key)}`);
  });
  return found;
}

function at(schema: JsonObject, pointer: string): Json | undefined {
  return pointer
    .split("/")
    .slice(1)
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))
    .reduce<Json | undefined>((node, key) => (isObject(node) ? node[key] : undefined), schema);
}

/** Properties that lack a description or a non-empty examples list, as `pointer: what is missing`. */
function undocumentedProperties(schema: JsonObject): string[] {
  const problems: string[] = [];
  for (const pointer of propertyPointers(schema)) {
    const property = at(schema, pointer);
    if (!isObject(property)) {
      problems.push(`${pointer}: not a schema object`);
      continue;
    }
    const { description, examples } = property;
    if (typeof description !== "string" || description.trim() === "") problems.push(`${pointer}: description`);
    if (!Array.isArray(examples) || examples.length === 0) problems.push(`${pointer}: examples`);
  }
  return problems;
}

/** Which object of modules/stack/defaults.ts holds the defaults of the properties of each schema object. */
const DEFAULTS_FOR: Record<string, keyof typeof stackDefaults> = {
  "/properties/cluster": "CLUSTER_DEFAULTS",
  "/properties/kubelet": "KUBELET_DEFAULTS",
  "/properties/kubeProxy": "KUBE_PROXY_DEFAULTS",
  "/properties/containerd": "CONTAINERD_DEFAULTS",
  "/$defs/cni": "CNI_DEFAULTS",
  "/properties/artifacts": "ARTIFACT_DEFAULTS",
  "/properties/destroy": "DESTROY_DEFAULTS",
  "/properties/upgrade": "UPGRADE_DEFAULTS",
  "/properties/certificates": "CERTIFICATE_DEFAULTS",
  "/$defs/ssh": "SSH_DEFAULTS",
  "/$defs/bastion": "BASTION_DEFAULTS",
  "/$defs/machine": "MACHINE_DEFAULTS",
  "/$defs/etcdMachine": "MACHINE_DEFAULTS",
  "/$defs/hypervisor": "HYPERVISOR_DEFAULTS",
  "/$defs/hypervisor/properties/storagePool": "STORAGE_POOL_DEFAULTS",
  "/$defs/hypervisor/properties/image": "IMAGE_DEFAULTS",
  "/$defs/vm": "VM_DEFAULTS",
};

/** Every `default` annotation in the schema, with the TypeScript default it documents. */
function schemaDefaults(schema: JsonObject): { pointer: string; schemaValue: Json; tsValue: unknown }[] {
  const found: { pointer: string; schemaValue: Json; tsValue: unknown }[] = [];
  walk(schema, "", (node, pointer) => {
    if (/\/(examples|default)(\/|$)/.test(pointer) || !("default" in node)) return;
    const match = /^(.*)\/properties\/([^/]+)$/.exec(pointer);
    const holder = match ? DEFAULTS_FOR[match[1] ?? ""] : undefined;
    const defaults = holder ? (stackDefaults[holder] as unknown as Record<string, unknown>) : undefined;
    const key = match?.[2] ?? "";
    const tsValue = defaults && Object.hasOwn(defaults, key) ? defaults[key] : "(no TypeScript default)";
    found.push({ pointer, schemaValue: node.default as Json, tsValue });
  });
  return found;
}

function machine(spec: StackSpec, name: string): MachineSpec {
  const found = spec.machines.find((m) => m.name === name);
  assert.ok(found, `machine ${name} not in the spec`);
  return found;
}

/** A small valid stack file; `extra` lines go at the top level, `cp` and `worker` lines into the machines. */
function stackText(options: { cluster?: string[]; extra?: string[]; cp?: string[]; worker?: string[] } = {}): string {
  return [
    SCHEMA_LINE,
    "cluster:",
    "  name: lab",
    '  kubernetesVersion: "1.36.4"',
    ...(options.cluster ?? []).map((l) => `  ${l}`),
    ...(options.extra ?? []),
    "machines:",
    "  - name: cp-1",
    "    address: 192.0.2.10",
    "    role: control-plane",
    "    os: debian-12",
    `    hostKey: ${HOST_KEY_A}`,
    ...(options.cp ?? []).map((l) => `    ${l}`),
    "  - name: worker-1",
    "    address: 192.0.2.21",
    "    role: worker",
    "    os: ubuntu-22.04",
    `    hostKey: ${HOST_KEY_B}`,
    ...(options.worker ?? []).map((l) => `    ${l}`),
    "",
  ].join("\n");
}

describe("the example stack", () => {
  const file = join(ROOT, "stacks", "example-baremetal.yaml");
  const spec = loadStackFile(file);

  it("loads with its cluster settings", () => {
    assert.equal(spec.file, file);
    assert.deepEqual(spec.cluster, {
      name: "metal",
      kubernetesVersion: "1.36.4",
      podCIDR: "10.244.0.0/16",
      serviceCIDR: "10.96.0.0/12",
      dnsDomain: "cluster.local",
      containerRuntime: "containerd",
    });
    assert.deepEqual(spec.derived, {
      clusterDnsIp: "10.96.0.10",
      apiServerServiceIp: "10.96.0.1",
      ipFamily: 4,
      apiEndpoint: { host: "192.0.2.10", port: 6443, family: 4 },
    });
  });

  it("has its three machines in file order, with defaults and overrides applied", () => {
    const ops = { user: "ops", privateKeyConfig: "sshPrivateKey", sudo: true, connectTimeoutSeconds: 15, retries: 3 };
    assert.deepEqual(spec.machines, [
      {
        name: "cp-1",
        address: "192.0.2.10",
        addressFamily: 4,
        role: "control-plane",
        os: "debian-12",
        arch: "amd64",
        hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMBhQa8V9LpMR1rfCvKqZc3Zt/QzkYAeSH7B/+A9OLVb",
        ssh: { ...ops, port: 22 },
        labels: {},
        taints: [],
      },
      {
        name: "worker-1",
        address: "192.0.2.21",
        addressFamily: 4,
        role: "worker",
        os: "ubuntu-24.04",
        arch: "amd64",
        hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJNe/Yg7c1oRkMINU14MgVNZkSYKXaui9Y4cnw9imqAI",
        ssh: { ...ops, port: 22 },
        labels: { "topology.kubernetes.io/zone": "rack-1" },
        taints: [],
      },
      {
        name: "worker-2",
        address: "192.0.2.22",
        addressFamily: 4,
        role: "worker",
        os: "rocky-9",
        arch: "arm64",
        hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAUIT3dQn1yXTQOwbBObheT9TOGsIDdZUUeISsB4X9CN",
        ssh: { ...ops, port: 2222 },
        labels: {},
        taints: [{ key: "dedicated", value: "batch", effect: "NoSchedule" }],
      },
    ]);
  });

  it("keeps the kubelet settings it sets and defaults the rest", () => {
    assert.deepEqual(spec.kubelet, {
      maxPods: 110,
      podPidsLimit: -1,
      failCgroupV1: true,
      systemReserved: { cpu: "100m", memory: "256Mi" },
      kubeReserved: {},
      evictionHard: {},
    });
  });
});

describe("defaults", () => {
  const spec = parseStack(stackText(), "minimal.yaml");

  it("fill in the cluster network, DNS domain and runtime", () => {
    assert.deepEqual(spec.cluster, {
      name: "lab",
      kubernetesVersion: "1.36.4",
      podCIDR: "10.244.0.0/16",
      serviceCIDR: "10.96.0.0/12",
      dnsDomain: "cluster.local",
      containerRuntime: "containerd",
    });
  });

  it("fill in the kubelet settings", () => {
    assert.deepEqual(spec.kubelet, {
      maxPods: 110,
      podPidsLimit: -1,
      failCgroupV1: true,
      systemReserved: {},
      kubeReserved: {},
      evictionHard: {},
    });
  });

  it("fill in SSH as root on port 22 with the sshPrivateKey secret, no sudo", () => {
    const expected = {
      user: "root",
      port: 22,
      privateKeyConfig: "sshPrivateKey",
      sudo: false,
      connectTimeoutSeconds: 15,
      retries: 3,
    };
    assert.deepEqual(machine(spec, "cp-1").ssh, expected);
    assert.deepEqual(machine(spec, "worker-1").ssh, expected);
  });

  it("fill in arch amd64, no labels and no taints", () => {
    for (const m of spec.machines) {
      assert.equal(m.arch, "amd64");
      assert.deepEqual(m.labels, {});
      assert.deepEqual(m.taints, []);
    }
  });

  it("fill in the upstream artifact locations, nodeforge's own checksums and no registry mirrors", () => {
    assert.deepEqual(spec.artifacts, {
      kubernetesBaseUrl: "https://dl.k8s.io/release",
      crictlBaseUrl: "https://github.com/kubernetes-sigs/cri-tools/releases/download",
      cniPluginsBaseUrl: "https://github.com/containernetworking/plugins/releases/download",
      etcdBaseUrl: "https://github.com/etcd-io/etcd/releases/download",
      containerdBaseUrl: "https://github.com/containerd/containerd/releases/download",
      runcBaseUrl: "https://github.com/opencontainers/runc/releases/download",
      sha256: {},
    });
    assert.deepEqual(spec.containerd, { registryMirrors: {}, restrictOOMScoreAdj: false });
  });

  it("give way to values the file sets, field by field", () => {
    const custom = parseStack(
      stackText({
        cluster: ["podCIDR: 172.16.0.0/16", "containerRuntime: containerd"],
        extra: ["kubelet:", "  maxPods: 50", "artifacts:", "  kubernetesBaseUrl: http://mirror.internal/k8s"],
        cp: ["arch: arm64"],
      }),
      "custom.yaml",
    );
    assert.deepEqual(custom.cluster, {
      name: "lab",
      kubernetesVersion: "1.36.4",
      podCIDR: "172.16.0.0/16",
      serviceCIDR: "10.96.0.0/12",
      dnsDomain: "cluster.local",
      containerRuntime: "containerd",
    });
    assert.deepEqual(custom.kubelet, {
      maxPods: 50,
      podPidsLimit: -1,
      failCgroupV1: true,
      systemReserved: {},
      kubeReserved: {},
      evictionHard: {},
    });
    assert.equal(custom.artifacts.kubernetesBaseUrl, "http://mirror.internal/k8s");
    assert.equal(custom.artifacts.crictlBaseUrl, "https://github.com/kubernetes-sigs/cri-tools/releases/download");
    assert.equal(machine(custom, "cp-1").arch, "arm64");
    assert.equal(machine(custom, "worker-1").arch, "amd64");
  });
});

describe("SSH settings", () => {
  const spec = parseStack(
    stackText({
      extra: ["ssh:", "  user: ops", "  sudo: true", "  port: 2200", "  privateKeyConfig: fleetKey", "  retries: 5"],
      cp: ["ssh:", "  port: 2222", "  connectTimeoutSeconds: 30", "  retries: 0"],
      worker: ["ssh: { user: root, sudo: false }"],
    }),
    "ssh.yaml",
  );

  it("merge a machine's overrides over the stack-wide block, field by field", () => {
    assert.deepEqual(machine(spec, "cp-1").ssh, {
      user: "ops",
      port: 2222,
      privateKeyConfig: "fleetKey",
      sudo: true,
      connectTimeoutSeconds: 30,
      retries: 0,
    });
  });

  it("let another machine override different fields, without leaking into its neighbours", () => {
    assert.deepEqual(machine(spec, "worker-1").ssh, {
      user: "root",
      port: 2200,
      privateKeyConfig: "fleetKey",
      sudo: false,
      connectTimeoutSeconds: 15,
      retries: 5,
    });
    assert.notEqual(machine(spec, "cp-1").ssh, machine(spec, "worker-1").ssh);
  });

  it("carry a sudo password secret name to the machines that use sudo", () => {
    const withPassword = parseStack(
      stackText({
        extra: ["ssh:", "  user: ops", "  sudo: true"],
        worker: ["ssh:", "  sudoPasswordConfig: workerSudo"],
      }),
      "sudo.yaml",
    );
    assert.equal(machine(withPassword, "worker-1").ssh.sudoPasswordConfig, "workerSudo");
    assert.equal(machine(withPassword, "cp-1").ssh.sudoPasswordConfig, undefined);
    assert.equal("sudoPasswordConfig" in machine(withPassword, "cp-1").ssh, false);
  });
});

describe("bastion", () => {
  const BASTION_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK3vJEmTrUt6Y+2pBpfHXAl3qpPP9ETGc5JOc7g3J9y4";
  const OTHER_BASTION_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAUIT3dQn1yXTQOwbBObheT9TOGsIDdZUUeISsB4X9CN";

  it("defaults to none: machines are reached directly", () => {
    const spec = parseStack(stackText(), "direct.yaml");
    for (const m of spec.machines) assert.equal("bastion" in m.ssh, false);
  });

  it("applies a stack-wide bastion to every machine, its user and key defaulting to each machine's", () => {
    const spec = parseStack(
      stackText({
        extra: [
          "ssh:",
          "  user: ops",
          "  sudo: true",
          "  bastion:",
          "    address: 203.0.113.7",
          `    hostKey: ${BASTION_KEY}`,
        ],
        worker: ["ssh:", "  user: root", "  sudo: false", "  privateKeyConfig: workerKey"],
      }),
      "bastion.yaml",
    );
    assert.deepEqual(machine(spec, "cp-1").ssh.bastion, {
      address: "203.0.113.7",
      port: 22,
      user: "ops",
      hostKey: BASTION_KEY,
      privateKeyConfig: "sshPrivateKey",
    });
    assert.deepEqual(machine(spec, "worker-1").ssh.bastion, {
      address: "203.0.113.7",
      port: 22,
      user: "root",
      hostKey: BASTION_KEY,
      privateKeyConfig: "workerKey",
    });
  });

  it("lets a machine's own bastion replace the stack-wide one as a whole", () => {
    const spec = parseStack(
      stackText({
        extra: [
          "ssh:",
          "  bastion:",
          "    address: 203.0.113.7",
          "    port: 2200",
          "    user: jump",
          `    hostKey: ${BASTION_KEY}`,
          "    privateKeyConfig: jumpKey",
        ],
        worker: ["ssh:", "  bastion:", "    address: bastion-2.example.internal", `    hostKey: ${OTHER_BASTION_KEY}`],
      }),
      "bastions.yaml",
    );
    assert.deepEqual(machine(spec, "cp-1").ssh.bastion, {
      address: "203.0.113.7",
      port: 2200,
      user: "jump",
      hostKey: BASTION_KEY,
      privateKeyConfig: "jumpKey",
    });
    assert.deepEqual(machine(spec, "worker-1").ssh.bastion, {
      address: "bastion-2.example.internal",
      port: 22,
      user: "root",
      hostKey: OTHER_BASTION_KEY,
      privateKeyConfig: "sshPrivateKey",
    });
  });
});

describe("reading without host keys (nodeforge hostkeys)", () => {
  const unpinned = stackText().replace(/\n {4}hostKey: .*/g, "");

  it("is refused by default", () => {
    assert.throws(() => parseStack(unpinned, "new.yaml"), /machines\[0\]\.hostKey: is required/);
  });

  it("accepts machines without a hostKey when asked, leaving it empty", () => {
    const spec = parseStack(unpinned, "new.yaml", undefined, { requireHostKeys: false });
    assert.deepEqual(
      spec.machines.map((m) => m.hostKey),
      ["", ""],
    );
  });
});

describe("derived values", () => {
  const derived = (serviceCIDR: string, podCIDR: string) =>
    parseStack(stackText({ cluster: [`serviceCIDR: ${serviceCIDR}`, `podCIDR: ${podCIDR}`] }), "derived.yaml").derived;

  it("put cluster DNS on the tenth and the API server on the first address of the default service CIDR", () => {
    assert.deepEqual(parseStack(stackText(), "d.yaml").derived, {
      clusterDnsIp: "10.96.0.10",
      apiServerServiceIp: "10.96.0.1",
      ipFamily: 4,
      apiEndpoint: { host: "192.0.2.10", port: 6443, family: 4 },
    });
  });

  it("follow a custom IPv4 service CIDR", () => {
    assert.deepEqual(derived("172.20.0.0/16", "10.244.0.0/16"), {
      clusterDnsIp: "172.20.0.10",
      apiServerServiceIp: "172.20.0.1",
      ipFamily: 4,
      apiEndpoint: { host: "192.0.2.10", port: 6443, family: 4 },
    });
    assert.deepEqual(derived("10.32.0.240/28", "10.244.0.0/16").clusterDnsIp, "10.32.0.250");
    assert.deepEqual(derived("10.32.0.240/28", "10.244.0.0/16").apiServerServiceIp, "10.32.0.241");
  });

  it("work for an IPv6 cluster", () => {
    const v6 = derived("fd00:10:96::/112", "fd00:10:244::/56");
    assert.deepEqual([v6.clusterDnsIp, v6.apiServerServiceIp, v6.ipFamily], ["fd00:10:96::a", "fd00:10:96::1", 6]);
  });

  it("parse the control-plane endpoint once: written, with its port or 6443, or the first control plane's", () => {
    const endpoint = (line: string) => parseStack(stackText({ cluster: [line] }), "e.yaml").derived.apiEndpoint;
    assert.deepEqual(endpoint("controlPlaneEndpoint: api.lab.internal"), { host: "api.lab.internal", port: 6443 });
    assert.deepEqual(endpoint("controlPlaneEndpoint: 192.0.2.100:8443"), {
      host: "192.0.2.100",
      port: 8443,
      family: 4,
    });
    assert.deepEqual(endpoint('controlPlaneEndpoint: "[2001:db8::1]:6443"'), {
      host: "2001:db8::1",
      port: 6443,
      family: 6,
    });
    const named = parseStack(stackText().replace("address: 192.0.2.10", "address: cp-1.lab.internal"), "n.yaml");
    assert.deepEqual(named.derived.apiEndpoint, { host: "cp-1.lab.internal", port: 6443 });
    assert.equal(named.machines[0]!.addressFamily, undefined, "a DNS name has no IP family");
  });
});

describe("the schema", () => {
  const schema = readSchema();

  it("documents every property with a description and examples", () => {
    assert.deepEqual(undocumentedProperties(schema), []);
  });

  it("finds the properties under $defs and inside array items (the check reaches them)", () => {
    const pointers = propertyPointers(schema);
    for (const pointer of [
      "/properties/cluster/properties/name",
      "/$defs/ssh/properties/user",
      "/$defs/ssh/properties/bastion",
      "/$defs/bastion/properties/hostKey",
      "/$defs/machine/properties/hostKey",
      "/$defs/machine/properties/taints/items/properties/effect",
    ]) {
      assert.ok(pointers.includes(pointer), `${pointer} not visited`);
    }
  });

  it("fails the documentation check when a property lacks a description or examples", () => {
    const broken = readSchema();
    const cluster = at(broken, "/properties/cluster/properties") as JsonObject;
    cluster.region = { type: "string" };
    const ssh = at(broken, "/$defs/ssh/properties") as JsonObject;
    ssh.agent = { type: "boolean", description: "Use the SSH agent." };
    const taint = at(broken, "/$defs/machine/properties/taints/items/properties/key") as JsonObject;
    taint.examples = [];
    assert.deepEqual(undocumentedProperties(broken), [
      "/properties/cluster/properties/region: description",
      "/properties/cluster/properties/region: examples",
      "/$defs/ssh/properties/agent: examples",
      "/$defs/machine/properties/taints/items/properties/key: examples",
    ]);
  });

  it("gives examples that validate against their own property schema", () => {
    const ajv = new Ajv2020({ allErrors: true, strict: true });
    ajv.addKeyword({ keyword: "x-invalid", schemaType: "string" });
    ajv.addKeyword({ keyword: "x-invalid-type", schemaType: "string" });
    ajv.addSchema(schema);
    const id = schema.$id as string;
    const failures: string[] = [];
    for (const pointer of propertyPointers(schema)) {
      const property = at(schema, pointer);
      const examples = isObject(property) && Array.isArray(property.examples) ? property.examples : [];
      const validate = ajv.compile({ $ref: `${id}#${pointer}` });
      for (const example of examples) {
        if (!validate(example))
          failures.push(`${pointer}: ${JSON.stringify(example)}: ${ajv.errorsText(validate.errors)}`);
      }
    }
    assert.deepEqual(failures, []);
  });

  it("annotates defaults that equal the TypeScript defaults in modules/stack/defaults.ts", () => {
    const defaults = schemaDefaults(schema);
    for (const { pointer, schemaValue, tsValue } of defaults) {
      assert.deepEqual(tsValue, schemaValue, `${pointer}: schema default differs from modules/stack/defaults.ts`);
    }
    const pointers = defaults.map((d) => d.pointer);
    for (const pointer of [
      "/properties/cluster/properties/podCIDR",
      "/properties/cluster/properties/serviceCIDR",
      "/properties/cluster/properties/dnsDomain",
      "/properties/cluster/properties/containerRuntime",
      "/properties/kubelet/properties/maxPods",
      "/properties/kubelet/properties/podPidsLimit",
      "/properties/kubelet/properties/failCgroupV1",
      "/properties/kubeProxy/properties/mode",
      "/$defs/ssh/properties/user",
      "/$defs/ssh/properties/port",
      "/$defs/ssh/properties/privateKeyConfig",
      "/$defs/ssh/properties/sudo",
      "/$defs/ssh/properties/connectTimeoutSeconds",
      "/$defs/ssh/properties/retries",
      "/$defs/bastion/properties/port",
      "/$defs/machine/properties/arch",
      "/$defs/etcdMachine/properties/arch",
    ]) {
      assert.ok(pointers.includes(pointer), `${pointer} has no default annotation`);
    }
  });

  it("would catch a schema default that drifted from the TypeScript default", () => {
    const drifted = readSchema();
    (at(drifted, "/$defs/ssh/properties/port") as JsonObject).default = 2222;
    (at(drifted, "/properties/cluster") as JsonObject).default = {};
    const mismatched = schemaDefaults(drifted)
      .filter((d) => !isDeepStrictEqual(d.tsValue, d.schemaValue))
      .map((d) => d.pointer);
    assert.deepEqual(mismatched, ["/properties/cluster", "/$defs/ssh/properties/port"]);
  });
});

describe("stack files under stacks/", () => {
  const dir = join(ROOT, "stacks");
  const files = readdirSync(dir).filter((f) => f.endsWith(".yaml") || f.endsWith(".yml"));

  it("include the example", () => {
    assert.ok(files.includes("example-baremetal.yaml"));
  });

  for (const name of files) {
    it(`${name} starts with the schema modeline and loads`, () => {
      const path = join(dir, name);
      const firstLine = readFileSync(path, "utf8").split("\n")[0];
      assert.equal(firstLine, SCHEMA_LINE);
      const spec = loadStackFile(path);
      assert.ok(spec.machines.length > 0);
    });
  }
});
