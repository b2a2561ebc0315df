/**
 * Invalid stack files: each case starts from one valid document, changes one thing, and checks the exact
 * issue(s) reported: path, message and the line the issue points at.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { DEFAULT_PINS, supportedKubernetesVersions, type Pins } from "../../modules/pins";
import { projectRoot } from "../../modules/project-root";
import {
  formatIssue,
  loadStackFile,
  parseStack,
  StackValidationError,
  type StackIssue,
  type StackSpec,
} from "../../modules/stack";

const FILE = "stacks/test.yaml";
const HOST_KEY_CP = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMBhQa8V9LpMR1rfCvKqZc3Zt/QzkYAeSH7B/+A9OLVb";
const HOST_KEY_WORKER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJNe/Yg7c1oRkMINU14MgVNZkSYKXaui9Y4cnw9imqAI";

/** The valid base document: every section present, so that every field can be changed in place. */
const RUNC_LINE = "  runcBaseUrl: https://github.com/opencontainers/runc/releases/download";
const BASE = [
  "# yaml-language-server: $schema=../schemas/stack.schema.json",
  "cluster:",
  "  name: lab",
  '  kubernetesVersion: "1.36.4"',
  "  podCIDR: 10.244.0.0/16",
  "  serviceCIDR: 10.96.0.0/12",
  "  dnsDomain: cluster.local",
  "  containerRuntime: containerd",
  "kubelet:",
  "  maxPods: 110",
  "  podPidsLimit: 4096",
  "  systemReserved:",
  "    cpu: 100m",
  "    memory: 256Mi",
  "  kubeReserved:",
  "    ephemeral-storage: 1Gi",
  "  evictionHard:",
  "    memory.available: 100Mi",
  "containerd:",
  "  registryMirrors:",
  "    docker.io:",
  "      - https://mirror.example.internal",
  "artifacts:",
  "  kubernetesBaseUrl: https://dl.k8s.io/release",
  "  crictlBaseUrl: https://github.com/kubernetes-sigs/cri-tools/releases/download",
  "  containerdBaseUrl: https://github.com/containerd/containerd/releases/download",
  "  runcBaseUrl: https://github.com/opencontainers/runc/releases/download",
  "ssh:",
  "  user: ops",
  "  sudo: true",
  "  privateKeyConfig: sshPrivateKey",
  "  connectTimeoutSeconds: 15",
  "machines:",
  "  - name: cp-1",
  "    address: 192.0.2.10",
  "    role: control-plane",
  "    os: debian-12",
  `    hostKey: ${HOST_KEY_CP}`,
  "  - name: worker-1",
  "    address: 192.0.2.21",
  "    role: worker",
  "    os: ubuntu-24.04",
  "    arch: arm64",
  `    hostKey: ${HOST_KEY_WORKER}`,
  "    ssh:",
  "      port: 2222",
  "      sudoPasswordConfig: sudoPassword",
  "    labels:",
  "      topology.kubernetes.io/zone: rack-1",
  "    taints:",
  "      - key: dedicated",
  "        value: gpu",
  "        effect: NoSchedule",
  "",
].join("\n");

const CLUSTER_BLOCK = BASE.slice(BASE.indexOf("cluster:\n"), BASE.indexOf("kubelet:\n"));
const MACHINES_BLOCK = BASE.slice(BASE.indexOf("machines:\n"));

interface Expected {
  path: string;
  /** The exact message, or an anchored pattern where the message embeds a value the test does not control. */
  message: string | RegExp;
  /** The 1-based line the issue must point at; undefined when the issue has no position. */
  line: number | undefined;
}

function countLines(text: string, line: string): number {
  return text.split("\n").filter((l) => l === line).length;
}

/** Replaces the one line equal to `line` with `replacement` (which may hold several lines, or none). */
function replaceLine(text: string, line: string, replacement: string | null): string {
  assert.equal(countLines(text, line), 1, `test setup: ${JSON.stringify(line)} must occur exactly once`);
  const lines = text.split("\n");
  const index = lines.indexOf(line);
  lines.splice(index, 1, ...(replacement === null ? [] : [replacement]));
  return lines.join("\n");
}

function removeLine(text: string, line: string): string {
  return replaceLine(text, line, null);
}

function insertAfter(text: string, line: string, ...added: string[]): string {
  return replaceLine(text, line, [line, ...added].join("\n"));
}

/** Replaces one exact occurrence of a (multi-line) piece of text. */
function replaceText(text: string, piece: string, replacement: string): string {
  assert.equal(text.split(piece).length, 2, `test setup: ${JSON.stringify(piece)} must occur exactly once`);
  return text.replace(piece, () => replacement);
}

/** The 1-based number of the one line equal to `line`. */
function lineOf(text: string, line: string): number {
  assert.equal(countLines(text, line), 1, `test setup: ${JSON.stringify(line)} must occur exactly once`);
  return text.split("\n").indexOf(line) + 1;
}

/** The 1-based numbers of every line equal to `line`. */
function linesOf(text: string, line: string): number[] {
  return text.split("\n").flatMap((l, i) => (l === line ? [i + 1] : []));
}

/** The issues parseStack reports; fails the test when the text is accepted or something else is thrown. */
function issuesOf(text: string, pins?: Pins): StackIssue[] {
  try {
    parseStack(text, FILE, pins);
  } catch (error) {
    assert.ok(error instanceof StackValidationError, `expected StackValidationError, got ${String(error)}`);
    return error.issues;
  }
  assert.fail("the stack file was accepted");
}

function assertIssues(actual: StackIssue[], expected: Expected[], file = FILE): void {
  const shown = actual.map((i) => `${i.path} | ${i.message} | line ${String(i.line)}`).join("\n");
  assert.deepEqual(
    actual.map((i) => i.path),
    expected.map((e) => e.path),
    `paths differ; reported:\n${shown}`,
  );
  actual.forEach((issue, i) => {
    const want = expected[i] as Expected;
    assert.equal(issue.file, file);
    if (typeof want.message === "string") assert.equal(issue.message, want.message, `message of ${issue.path}`);
    else assert.match(issue.message, want.message, `message of ${issue.path}`);
    assert.equal(issue.line, want.line, `line of ${issue.path}: ${issue.message}`);
    if (want.line !== undefined) assert.equal(typeof issue.column, "number");
  });
}

function expectIssues(text: string, expected: Expected[], pins?: Pins): void {
  assertIssues(issuesOf(text, pins), expected);
}

/** Shorthand for a single issue pointing at the one line equal to `line`. */
function expectIssue(text: string, path: string, message: string | RegExp, line: string): void {
  expectIssues(text, [{ path, message, line: lineOf(text, line) }]);
}

function expectValid(text: string): StackSpec {
  return parseStack(text, FILE);
}

/** The message for an unknown property, listing what the schema allows at that place. */
function unknownProperty(schemaPointer: string): string {
  const schema = JSON.parse(readFileSync(join(projectRoot(), "schemas", "stack.schema.json"), "utf8")) as unknown;
  const node = schemaPointer
    .split("/")
    .slice(1)
    .reduce<unknown>((n, key) => (n as Record<string, unknown>)[key], schema) as { properties: object };
  return `unknown property; allowed here: ${Object.keys(node.properties).join(", ")}`;
}

const RFC1123 =
  "must be an RFC 1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit";
const HTTP_URL = "must be an http(s) URL without spaces, quotes or shell characters";
const LABEL_KEY =
  "must be a label key: an optional DNS prefix and '/', then a name of letters, digits, '-', '_' and '.'";
const LABEL_VALUE =
  "must be a label value: letters, digits, '-', '_' and '.', starting and ending with a letter or digit";
const NODE_RESTRICTION =
  "is in a kubernetes.io/k8s.io namespace the kubelet may not set on its own node (NodeRestriction); " +
  "use another prefix";
const HOST_KEY_SENTENCE = "must be '<key type> <base64 key>' as in known_hosts, e.g. 'ssh-ed25519 AAAA...'";
const NEEDS_CONTROL_PLANE = "needs at least one machine with role control-plane or control-plane+worker";

describe("the base document", () => {
  it("is valid, so that every case below fails for the one thing it changes", () => {
    const spec = expectValid(BASE);
    assert.deepEqual(
      spec.machines.map((m) => [m.name, m.ssh.port, m.ssh.sudoPasswordConfig]),
      [
        ["cp-1", 22, undefined],
        ["worker-1", 2222, "sudoPassword"],
      ],
    );
  });
});

describe("required properties", () => {
  it("cluster", () => {
    const text = replaceText(BASE, CLUSTER_BLOCK, "");
    expectIssue(text, "cluster", "is required", "kubelet:");
  });

  it("cluster.name", () => {
    const text = removeLine(BASE, "  name: lab");
    expectIssue(text, "cluster.name", "is required", "cluster:");
  });

  it("cluster.kubernetesVersion", () => {
    const text = removeLine(BASE, '  kubernetesVersion: "1.36.4"');
    expectIssue(text, "cluster.kubernetesVersion", "is required", "cluster:");
  });

  it("machines", () => {
    const text = replaceText(BASE, MACHINES_BLOCK, "");
    // A missing top-level property points at the start of the top-level mapping.
    expectIssue(text, "machines", "is required", "cluster:");
  });

  it("machine name", () => {
    const text = replaceText(BASE, "  - name: cp-1\n    address:", "  - address:");
    expectIssue(text, "machines[0].name", "is required", "  - address: 192.0.2.10");
  });

  it("machine address", () => {
    const text = removeLine(BASE, "    address: 192.0.2.21");
    expectIssue(text, "machines[1].address", "is required", "  - name: worker-1");
  });

  it("machine role", () => {
    const text = removeLine(BASE, "    role: control-plane");
    expectIssue(text, "machines[0].role", "is required", "  - name: cp-1");
  });

  it("machine os", () => {
    const text = removeLine(BASE, "    os: ubuntu-24.04");
    expectIssue(text, "machines[1].os", "is required", "  - name: worker-1");
  });

  it("machine hostKey", () => {
    const text = removeLine(BASE, `    hostKey: ${HOST_KEY_CP}`);
    expectIssue(text, "machines[0].hostKey", "is required", "  - name: cp-1");
  });

  it("taint effect", () => {
    const text = removeLine(BASE, "        effect: NoSchedule");
    expectIssue(text, "machines[1].taints[0].effect", "is required", "      - key: dedicated");
  });
});

describe("unknown properties", () => {
  it("at the top level", () => {
    const text = `${BASE}nodes: 3\n`;
    expectIssue(text, "nodes", unknownProperty(""), "nodes: 3");
  });

  it("at the top level, pointing at the key of a block value", () => {
    const text = `${BASE}network:\n  mtu: 1500\n`;
    expectIssue(text, "network", unknownProperty(""), "network:");
  });

  it("in cluster", () => {
    const text = insertAfter(BASE, "  name: lab", "  region: eu-1");
    expectIssue(text, "cluster.region", unknownProperty("/properties/cluster"), "  region: eu-1");
  });

  it("in kubelet", () => {
    const text = insertAfter(BASE, "  maxPods: 110", "  cgroupDriver: cgroupfs");
    expectIssue(text, "kubelet.cgroupDriver", unknownProperty("/properties/kubelet"), "  cgroupDriver: cgroupfs");
  });

  it("in a machine", () => {
    const text = insertAfter(BASE, "    os: debian-12", "    hostname: cp-1.example");
    expectIssue(text, "machines[0].hostname", unknownProperty("/$defs/machine"), "    hostname: cp-1.example");
  });

  it("in a machine's ssh block", () => {
    const text = insertAfter(BASE, "      port: 2222", "      password: hunter2");
    expectIssue(text, "machines[1].ssh.password", unknownProperty("/$defs/ssh"), "      password: hunter2");
  });

  it("in a taint", () => {
    const text = insertAfter(BASE, "        value: gpu", "        operator: Exists");
    const allowed = "/$defs/machine/properties/taints/items";
    expectIssue(text, "machines[1].taints[0].operator", unknownProperty(allowed), "        operator: Exists");
  });

  it("in a kubelet resource list (a resource name outside the list)", () => {
    const text = insertAfter(BASE, "    cpu: 100m", '    gpu: "1"');
    expectIssue(
      text,
      "kubelet.systemReserved.gpu",
      '"gpu" is not allowed; must be one of: cpu, memory, ephemeral-storage, pid',
      '    gpu: "1"',
    );
  });

  it("in evictionHard (a signal kubelet does not know)", () => {
    const text = insertAfter(BASE, "    memory.available: 100Mi", "    disk.available: 10%");
    expectIssue(
      text,
      'kubelet.evictionHard["disk.available"]',
      '"disk.available" is not allowed; must be one of: memory.available, nodefs.available, nodefs.inodesFree, ' +
        "imagefs.available, imagefs.inodesFree, pid.available",
      "    disk.available: 10%",
    );
  });
});

describe("values outside an enum", () => {
  it("role", () => {
    const text = replaceLine(BASE, "    role: worker", "    role: master");
    const message = '"master" is not allowed; must be one of: control-plane, worker, control-plane+worker';
    expectIssue(text, "machines[1].role", message, "    role: master");
  });

  it("os", () => {
    const text = replaceLine(BASE, "    os: debian-12", "    os: debian-11");
    const message = '"debian-11" is not allowed; must be one of: debian-12, ubuntu-22.04, ubuntu-24.04, rocky-9';
    expectIssue(text, "machines[0].os", message, "    os: debian-11");
  });

  it("arch", () => {
    const text = replaceLine(BASE, "    arch: arm64", "    arch: x86_64");
    expectIssue(text, "machines[1].arch", '"x86_64" is not allowed; must be one of: amd64, arm64', "    arch: x86_64");
  });

  it("containerRuntime", () => {
    const text = replaceLine(BASE, "  containerRuntime: containerd", "  containerRuntime: docker");
    const message = '"docker" is not allowed; must be one of: containerd, cri-o';
    expectIssue(text, "cluster.containerRuntime", message, "  containerRuntime: docker");
  });

  it("taint effect", () => {
    const text = replaceLine(BASE, "        effect: NoSchedule", "        effect: noschedule");
    const message = '"noschedule" is not allowed; must be one of: NoSchedule, PreferNoSchedule, NoExecute';
    expectIssue(text, "machines[1].taints[0].effect", message, "        effect: noschedule");
  });
});

describe("values that do not match their pattern", () => {
  it("cluster name with uppercase", () => {
    const text = replaceLine(BASE, "  name: lab", "  name: Lab");
    expectIssue(text, "cluster.name", `"Lab" ${RFC1123}`, "  name: Lab");
  });

  it("cluster name ending in '-'", () => {
    const text = replaceLine(BASE, "  name: lab", "  name: lab-");
    expectIssue(text, "cluster.name", `"lab-" ${RFC1123}`, "  name: lab-");
  });

  it("machine name with uppercase", () => {
    const text = replaceLine(BASE, "  - name: cp-1", "  - name: CP-1");
    expectIssue(text, "machines[0].name", `"CP-1" ${RFC1123}`, "  - name: CP-1");
  });

  it("machine name with an underscore", () => {
    const text = replaceLine(BASE, "  - name: worker-1", "  - name: worker_1");
    expectIssue(text, "machines[1].name", `"worker_1" ${RFC1123}`, "  - name: worker_1");
  });

  it("name longer than 63 characters", () => {
    const long = "a".repeat(64);
    const text = replaceLine(BASE, "  - name: cp-1", `  - name: ${long}`);
    expectIssue(text, "machines[0].name", "must be at most 63 characters long", `  - name: ${long}`);
  });

  it("hostKey garbage", () => {
    const text = replaceLine(BASE, `    hostKey: ${HOST_KEY_CP}`, "    hostKey: not-a-key");
    const message = `"not-a-key" ${HOST_KEY_SENTENCE}`;
    expectIssue(text, "machines[0].hostKey", message, "    hostKey: not-a-key");
  });

  it("hostKey of an unsupported type, with a host name in front", () => {
    const line = "    hostKey: cp-1 ssh-dss AAAAB3NzaC1kc3M";
    const text = replaceLine(BASE, `    hostKey: ${HOST_KEY_CP}`, line);
    const message = `"cp-1 ssh-dss AAAAB3NzaC1kc3M" ${HOST_KEY_SENTENCE}`;
    expectIssue(text, "machines[0].hostKey", message, line);
  });

  it("ssh user with uppercase", () => {
    const text = replaceLine(BASE, "  user: ops", "  user: Ops");
    const message = `"Ops" must be a POSIX user name: lowercase letters, digits, '_' and '-'`;
    expectIssue(text, "ssh.user", message, "  user: Ops");
  });

  it("privateKeyConfig with a '-'", () => {
    const text = replaceLine(BASE, "  privateKeyConfig: sshPrivateKey", "  privateKeyConfig: ssh-key");
    const message = `"ssh-key" must be a Pulumi config key name: letters, digits and '_'`;
    expectIssue(text, "ssh.privateKeyConfig", message, "  privateKeyConfig: ssh-key");
  });

  it("label key with a space", () => {
    const text = replaceLine(BASE, "      topology.kubernetes.io/zone: rack-1", '      "Bad Key": rack-1');
    expectIssue(text, 'machines[1].labels["Bad Key"]', `"Bad Key" ${LABEL_KEY}`, '      "Bad Key": rack-1');
  });

  it("label value starting with '-'", () => {
    const line = "      topology.kubernetes.io/zone: -rack";
    const text = replaceLine(BASE, "      topology.kubernetes.io/zone: rack-1", line);
    expectIssue(text, 'machines[1].labels["topology.kubernetes.io/zone"]', `"-rack" ${LABEL_VALUE}`, line);
  });

  it("taint key with two slashes", () => {
    const text = replaceLine(BASE, "      - key: dedicated", "      - key: example.com/a/b");
    const message =
      "\"example.com/a/b\" must be a taint key: an optional DNS prefix and '/', then a name of letters, digits, " +
      "'-', '_' and '.'";
    expectIssue(text, "machines[1].taints[0].key", message, "      - key: example.com/a/b");
  });

  it("URL with a space", () => {
    const line = "  kubernetesBaseUrl: https://dl.k8s.io/my release";
    const text = replaceLine(BASE, "  kubernetesBaseUrl: https://dl.k8s.io/release", line);
    expectIssue(text, "artifacts.kubernetesBaseUrl", `"https://dl.k8s.io/my release" ${HTTP_URL}`, line);
  });

  it("URL with a quote", () => {
    const line = `  runcBaseUrl: "https://github.com/opencontainers/runc/releases/download'"`;
    const text = replaceLine(BASE, RUNC_LINE, line);
    const message = `"https://github.com/opencontainers/runc/releases/download'" ${HTTP_URL}`;
    expectIssue(text, "artifacts.runcBaseUrl", message, line);
  });

  it("URL with a command substitution", () => {
    const line = "  crictlBaseUrl: https://example.com/$(id)";
    const text = replaceLine(
      BASE,
      "  crictlBaseUrl: https://github.com/kubernetes-sigs/cri-tools/releases/download",
      line,
    );
    expectIssue(text, "artifacts.crictlBaseUrl", `"https://example.com/$(id)" ${HTTP_URL}`, line);
  });

  it("artifacts.sha256: a checksum that is not 64 hex digits, an arch missing a binary, an unknown arch", () => {
    const sums = (extra: string[]) => replaceLine(BASE, RUNC_LINE, [RUNC_LINE, "  sha256:", ...extra].join("\n"));
    const hex = "a".repeat(64);
    const full = ["kubelet", "kubeadm", "kubectl", "crictl"].map((b) => `      ${b}: "${hex}"`);
    const short = sums(["    amd64:", `      kubelet: "${"a".repeat(63)}"`, ...full.slice(1)]);
    expectIssue(
      short,
      "artifacts.sha256.amd64.kubelet",
      /^"a{50,}\.\.\. must be a sha256: 64 lowercase hex digits$/,
      `      kubelet: "${"a".repeat(63)}"`,
    );
    const missing = sums(["    amd64:", ...full.slice(0, 3)]);
    expectIssue(missing, "artifacts.sha256.amd64.crictl", "is required", "    amd64:");
    const unknown = sums(["    s390x:", ...full]);
    expectIssue(unknown, "artifacts.sha256.s390x", "unknown property; allowed here: amd64, arm64", "    s390x:");
  });

  it("URL with a scheme other than http(s)", () => {
    const line = "      - ftp://mirror.example.internal";
    const text = replaceLine(BASE, "      - https://mirror.example.internal", line);
    const message = `"ftp://mirror.example.internal" ${HTTP_URL}`;
    expectIssue(text, 'containerd.registryMirrors["docker.io"][0]', message, line);
  });

  it("Kubernetes version with a leading v", () => {
    const line = '  kubernetesVersion: "v1.36.4"';
    const text = replaceLine(BASE, '  kubernetesVersion: "1.36.4"', line);
    const message = `"v1.36.4" must be a version like 1.36.4 (no leading 'v')`;
    expectIssue(text, "cluster.kubernetesVersion", message, line);
  });

  it("address that is neither an IP address nor a DNS name", () => {
    const text = replaceLine(BASE, "    address: 192.0.2.10", "    address: cp_1.example");
    const message = `"cp_1.example" must be an IPv4 address, an IPv6 address or a DNS name`;
    expectIssue(text, "machines[0].address", message, "    address: cp_1.example");
  });
});

describe("numbers out of range", () => {
  it("ssh port 0", () => {
    const text = insertAfter(BASE, "  user: ops", "  port: 0");
    expectIssue(text, "ssh.port", "0 must be >= 1", "  port: 0");
  });

  it("ssh port 70000", () => {
    const text = replaceLine(BASE, "      port: 2222", "      port: 70000");
    expectIssue(text, "machines[1].ssh.port", "70000 must be <= 65535", "      port: 70000");
  });

  it("maxPods 0", () => {
    const text = replaceLine(BASE, "  maxPods: 110", "  maxPods: 0");
    expectIssue(text, "kubelet.maxPods", "0 must be >= 1", "  maxPods: 0");
  });

  it("maxPods 2501", () => {
    const text = replaceLine(BASE, "  maxPods: 110", "  maxPods: 2501");
    expectIssue(text, "kubelet.maxPods", "2501 must be <= 2500", "  maxPods: 2501");
  });

  it("podPidsLimit -2", () => {
    const text = replaceLine(BASE, "  podPidsLimit: 4096", "  podPidsLimit: -2");
    expectIssue(text, "kubelet.podPidsLimit", "-2 must be >= -1", "  podPidsLimit: -2");
  });

  it("connectTimeoutSeconds 0", () => {
    const text = replaceLine(BASE, "  connectTimeoutSeconds: 15", "  connectTimeoutSeconds: 0");
    expectIssue(text, "ssh.connectTimeoutSeconds", "0 must be >= 1", "  connectTimeoutSeconds: 0");
  });

  it("connectTimeoutSeconds 601", () => {
    const text = replaceLine(BASE, "  connectTimeoutSeconds: 15", "  connectTimeoutSeconds: 601");
    expectIssue(text, "ssh.connectTimeoutSeconds", "601 must be <= 600", "  connectTimeoutSeconds: 601");
  });
});

describe("values of the wrong type", () => {
  it("port as a string", () => {
    const text = replaceLine(BASE, "      port: 2222", '      port: "2222"');
    expectIssue(text, "machines[1].ssh.port", '"2222" must be of type integer', '      port: "2222"');
  });

  it("port as a fraction", () => {
    const text = replaceLine(BASE, "      port: 2222", "      port: 22.5");
    expectIssue(text, "machines[1].ssh.port", "22.5 must be of type integer", "      port: 22.5");
  });

  it("sudo as a string (YAML 1.2 reads 'yes' as a string)", () => {
    const text = replaceLine(BASE, "  sudo: true", "  sudo: yes");
    expectIssue(text, "ssh.sudo", '"yes" must be of type boolean', "  sudo: yes");
  });

  it("Kubernetes version as a number", () => {
    const text = replaceLine(BASE, '  kubernetesVersion: "1.36.4"', "  kubernetesVersion: 1.34");
    expectIssue(text, "cluster.kubernetesVersion", "1.34 must be of type string", "  kubernetesVersion: 1.34");
  });

  it("machines as a map", () => {
    const text = replaceText(BASE, MACHINES_BLOCK, "machines:\n  cp-1: { address: 192.0.2.10 }\n");
    expectIssue(text, "machines", '{"cp-1":{"address":"192.0.2.10"}} must be of type array', "machines:");
  });

  it("an empty machine entry", () => {
    const text = `${BASE}  -\n`;
    expectIssues(text, [{ path: "machines[2]", message: "null must be of type object", line: lineOf(text, "  -") }]);
  });

  it("an empty file", () => {
    expectIssues("", [{ path: "", message: "null must be of type object", line: undefined }]);
  });
});

describe("machine list", () => {
  it("empty", () => {
    const text = replaceText(BASE, MACHINES_BLOCK, "machines: []\n");
    expectIssue(text, "machines", "must have at least 1 item(s)", "machines: []");
  });

  it("duplicate names", () => {
    const text = replaceLine(BASE, "  - name: worker-1", "  - name: cp-1");
    const line = linesOf(text, "  - name: cp-1")[1];
    expectIssues(text, [{ path: "machines[1].name", message: "'cp-1' is already the name of machines[0]", line }]);
  });

  it("duplicate address and port", () => {
    let text = replaceLine(BASE, "    address: 192.0.2.21", "    address: 192.0.2.10");
    text = removeLine(text, "      port: 2222");
    expectIssues(text, [
      {
        path: "machines[1].address",
        message: "'192.0.2.10' (SSH port 22) is already the address of machines[0]",
        line: linesOf(text, "    address: 192.0.2.10")[1],
      },
    ]);
  });

  it("duplicate IPv6 address written two ways", () => {
    let text = replaceLine(BASE, "    address: 192.0.2.10", '    address: "2001:db8::10"');
    text = replaceLine(text, "    address: 192.0.2.21", '    address: "2001:DB8:0:0::10"');
    text = removeLine(text, "      port: 2222");
    const message = "'2001:DB8:0:0::10' (SSH port 22) is already the address of machines[0]";
    expectIssue(text, "machines[1].address", message, '    address: "2001:DB8:0:0::10"');
  });

  it("allows the same address on different SSH ports", () => {
    const text = replaceLine(BASE, "    address: 192.0.2.21", "    address: 192.0.2.10");
    const spec = expectValid(text);
    assert.deepEqual(
      spec.machines.map((m) => `${m.address}:${m.ssh.port}`),
      ["192.0.2.10:22", "192.0.2.10:2222"],
    );
  });

  it("without a control-plane machine", () => {
    const text = replaceLine(BASE, "    role: control-plane", "    role: worker");
    expectIssue(text, "machines", NEEDS_CONTROL_PLANE, "machines:");
  });

  it("allows control-plane+worker as the only control plane", () => {
    const text = replaceLine(BASE, "    role: control-plane", "    role: control-plane+worker");
    assert.equal(expectValid(text).machines[0]?.role, "control-plane+worker");
  });
});

describe("machine addresses", () => {
  it("IPv4 address with an octet above 255", () => {
    const text = replaceLine(BASE, "    address: 192.0.2.10", "    address: 192.0.2.256");
    expectIssue(text, "machines[0].address", "'192.0.2.256' is not a valid IPv4 address", "    address: 192.0.2.256");
  });

  it("IPv6 address with too many colons", () => {
    const text = replaceLine(BASE, "    address: 192.0.2.10", '    address: "2001:db8:::1"');
    const message = "'2001:db8:::1' is not a valid IPv6 address";
    expectIssue(text, "machines[0].address", message, '    address: "2001:db8:::1"');
  });

  it("inside the service CIDR", () => {
    const text = replaceLine(BASE, "    address: 192.0.2.10", "    address: 10.96.5.5");
    const message = "'10.96.5.5' lies inside the cluster serviceCIDR '10.96.0.0/12'";
    expectIssue(text, "machines[0].address", message, "    address: 10.96.5.5");
  });

  it("inside the pod CIDR", () => {
    const text = replaceLine(BASE, "    address: 192.0.2.21", "    address: 10.244.3.7");
    const message = "'10.244.3.7' lies inside the cluster podCIDR '10.244.0.0/16'";
    expectIssue(text, "machines[1].address", message, "    address: 10.244.3.7");
  });

  it("a DNS name is not checked against the CIDRs", () => {
    const text = replaceLine(BASE, "    address: 192.0.2.10", "    address: cp-1.example.internal");
    assert.equal(expectValid(text).machines[0]?.address, "cp-1.example.internal");
  });
});

describe("cluster CIDRs", () => {
  const withCidrs = (pod: string, service: string) => {
    const text = replaceLine(BASE, "  podCIDR: 10.244.0.0/16", `  podCIDR: ${pod}`);
    return replaceLine(text, "  serviceCIDR: 10.96.0.0/12", `  serviceCIDR: ${service}`);
  };

  it("host bits set", () => {
    const text = withCidrs("10.244.1.0/16", "10.96.0.0/12");
    const message = "'10.244.1.0/16' has host bits set; the network is 10.244.0.0/16";
    expectIssue(text, "cluster.podCIDR", message, "  podCIDR: 10.244.1.0/16");
  });

  it("prefix beyond 32", () => {
    const text = withCidrs("10.244.0.0/16", "10.96.0.0/33");
    const message = "'10.96.0.0/33' has prefix /33, which is out of range 0-32";
    expectIssue(text, "cluster.serviceCIDR", message, "  serviceCIDR: 10.96.0.0/33");
  });

  it("not an address", () => {
    const text = withCidrs("10.244.0.300/16", "10.96.0.0/12");
    const message = "'10.244.0.300/16' has address '10.244.0.300', which is not an IPv4 or IPv6 address";
    expectIssue(text, "cluster.podCIDR", message, "  podCIDR: 10.244.0.300/16");
  });

  it("no prefix at all", () => {
    const text = withCidrs("10.244.0.0", "10.96.0.0/12");
    expectIssue(text, "cluster.podCIDR", '"10.244.0.0" must be a CIDR like 10.244.0.0/16', "  podCIDR: 10.244.0.0");
  });

  it("pod and service CIDRs overlap", () => {
    const text = withCidrs("10.0.0.0/8", "10.96.0.0/12");
    const message = "'10.96.0.0/12' overlaps podCIDR '10.0.0.0/8'";
    expectIssue(text, "cluster.serviceCIDR", message, "  serviceCIDR: 10.96.0.0/12");
  });

  it("IPv4 pods with IPv6 services", () => {
    const text = withCidrs("10.244.0.0/16", "fd00:10:96::/112");
    const message = "is IPv6 but podCIDR is IPv4; dual-stack is not supported";
    expectIssue(text, "cluster.serviceCIDR", message, "  serviceCIDR: fd00:10:96::/112");
  });

  it("service CIDR prefix too large (/8)", () => {
    const text = withCidrs("10.244.0.0/16", "100.0.0.0/8");
    const message = "'100.0.0.0/8' has prefix /8; IPv4 serviceCIDR prefixes must be between /12 and /28";
    expectIssue(text, "cluster.serviceCIDR", message, "  serviceCIDR: 100.0.0.0/8");
  });

  it("IPv6 service CIDR prefix too large (/64)", () => {
    const text = withCidrs("fd00:10:244::/56", "fd00:10:96::/64");
    const message = "'fd00:10:96::/64' has prefix /64; IPv6 serviceCIDR prefixes must be between /108 and /124";
    expectIssue(text, "cluster.serviceCIDR", message, "  serviceCIDR: fd00:10:96::/64");
  });

  it("pod CIDR too small for per-node ranges (/25)", () => {
    const text = withCidrs("10.244.0.0/25", "10.96.0.0/12");
    const message = "'10.244.0.0/25' has prefix /25; IPv4 podCIDR prefixes must be between /8 and /24";
    expectIssue(text, "cluster.podCIDR", message, "  podCIDR: 10.244.0.0/25");
  });
});

describe("cluster settings", () => {
  it("unsupported Kubernetes version lists the supported ones", () => {
    const supported = supportedKubernetesVersions(DEFAULT_PINS);
    assert.ok(supported.includes("1.36.4") && supported.length > 1, "test setup: pins changed shape");
    const text = replaceLine(BASE, '  kubernetesVersion: "1.36.4"', '  kubernetesVersion: "1.30.0"');
    const message = `'1.30.0' is not supported; supported versions: ${supported.join(", ")}`;
    expectIssue(text, "cluster.kubernetesVersion", message, '  kubernetesVersion: "1.30.0"');
  });

  it("supported versions come from the pins passed in", () => {
    const release = DEFAULT_PINS.kubernetes["1.36.4"];
    assert.ok(release, "test setup: 1.36.4 is pinned");
    const pins: Pins = { ...DEFAULT_PINS, kubernetes: { "1.35.1": release, "1.36.0": release } };
    const message = "'1.36.4' is not supported; supported versions: 1.35.1, 1.36.0";
    expectIssues(
      BASE,
      [{ path: "cluster.kubernetesVersion", message, line: lineOf(BASE, '  kubernetesVersion: "1.36.4"') }],
      pins,
    );
  });

  it("cri-o is reserved", () => {
    const text = replaceLine(BASE, "  containerRuntime: containerd", "  containerRuntime: cri-o");
    const message = "'cri-o' is reserved for a later release; use containerd";
    expectIssue(text, "cluster.containerRuntime", message, "  containerRuntime: cri-o");
  });

  it("dnsDomain with uppercase", () => {
    const text = replaceLine(BASE, "  dnsDomain: cluster.local", "  dnsDomain: Cluster.Local");
    const message = '"Cluster.Local" must be a lowercase DNS domain like cluster.local';
    expectIssue(text, "cluster.dnsDomain", message, "  dnsDomain: Cluster.Local");
  });
});

describe("sudo", () => {
  it("a user other than root without sudo, on every machine that inherits it", () => {
    const text = removeLine(BASE, "  sudo: true");
    const notRoot = "user 'ops' is not root, so sudo must be true (set it under ssh or the machine's ssh)";
    expectIssues(text, [
      // cp-1 has no ssh block of its own: the issue points at the machine.
      { path: "machines[0].ssh.sudo", message: notRoot, line: lineOf(text, "  - name: cp-1") },
      { path: "machines[1].ssh.sudo", message: notRoot, line: lineOf(text, "    ssh:") },
      {
        path: "machines[1].ssh.sudoPasswordConfig",
        message: "is set but sudo is false",
        line: lineOf(text, "      sudoPasswordConfig: sudoPassword"),
      },
    ]);
  });

  it("sudoPasswordConfig without sudo, for root", () => {
    let text = replaceLine(BASE, "  user: ops", "  user: root");
    text = replaceLine(text, "  sudo: true", "  sudo: false");
    const line = "      sudoPasswordConfig: sudoPassword";
    expectIssue(text, "machines[1].ssh.sudoPasswordConfig", "is set but sudo is false", line);
  });

  it("a machine may turn sudo on for itself", () => {
    let text = removeLine(BASE, "  sudo: true");
    text = insertAfter(text, "      port: 2222", "      sudo: true");
    text = insertAfter(text, "    os: debian-12", "    ssh: { user: root }");
    const spec = expectValid(text);
    assert.deepEqual(
      spec.machines.map((m) => [m.ssh.user, m.ssh.sudo]),
      [
        ["root", false],
        ["ops", true],
      ],
    );
  });
});

describe("host keys and bastions", () => {
  const BASTION_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK3vJEmTrUt6Y+2pBpfHXAl3qpPP9ETGc5JOc7g3J9y4";
  const stackBastion = (...lines: string[]) =>
    insertAfter(BASE, "  connectTimeoutSeconds: 15", "  bastion:", ...lines.map((l) => `    ${l}`));

  it("a machine hostKey that has the right shape but is not a key", () => {
    const line = "    hostKey: ssh-ed25519 AAAA";
    const text = replaceLine(BASE, `    hostKey: ${HOST_KEY_CP}`, line);
    const message =
      "is not a usable SSH host key: host key data for ssh-ed25519 is not an SSH public key: truncated field length";
    expectIssue(text, "machines[0].hostKey", message, line);
  });

  it("a machine hostKey whose type word does not match its data", () => {
    const line = `    hostKey: ssh-rsa ${HOST_KEY_CP.split(" ")[1]}`;
    const text = replaceLine(BASE, `    hostKey: ${HOST_KEY_CP}`, line);
    const message = 'is not a usable SSH host key: host key data declares type "ssh-ed25519", the line says ssh-rsa';
    expectIssue(text, "machines[0].hostKey", message, line);
  });

  it("a bastion without a hostKey: pinning it is required", () => {
    const text = stackBastion("address: 203.0.113.7");
    expectIssue(text, "ssh.bastion.hostKey", "is required", "  bastion:");
  });

  it("a bastion without an address", () => {
    const text = stackBastion(`hostKey: ${BASTION_KEY}`);
    expectIssue(text, "ssh.bastion.address", "is required", "  bastion:");
  });

  it("a stack-wide bastion with a bad host key is reported once, where it is written", () => {
    const line = "    hostKey: ssh-ed25519 AAAA";
    const text = stackBastion("address: 203.0.113.7", "hostKey: ssh-ed25519 AAAA");
    const message =
      "is not a usable SSH host key: host key data for ssh-ed25519 is not an SSH public key: truncated field length";
    expectIssue(text, "ssh.bastion.hostKey", message, line);
  });

  it("a machine's own bastion with a bad host key is reported at that machine", () => {
    const line = "        hostKey: ssh-ed25519 AAAA";
    const text = insertAfter(BASE, "      port: 2222", "      bastion:", "        address: 203.0.113.7", line);
    const message =
      "is not a usable SSH host key: host key data for ssh-ed25519 is not an SSH public key: truncated field length";
    expectIssue(text, "machines[1].ssh.bastion.hostKey", message, line);
  });

  it("a bastion with an unknown property, a bad port and a bad user", () => {
    const text = stackBastion("address: 203.0.113.7", `hostKey: ${BASTION_KEY}`, "port: 0", "user: Jump", "via: x");
    expectIssues(text, [
      {
        path: "ssh.bastion.via",
        message: unknownProperty("/$defs/bastion"),
        line: lineOf(text, "    via: x"),
      },
      { path: "ssh.bastion.port", message: "0 must be >= 1", line: lineOf(text, "    port: 0") },
      {
        path: "ssh.bastion.user",
        message: `"Jump" must be a POSIX user name: lowercase letters, digits, '_' and '-'`,
        line: lineOf(text, "    user: Jump"),
      },
    ]);
  });

  it("a machine that is its own bastion", () => {
    const text = stackBastion("address: 192.0.2.10", `hostKey: ${BASTION_KEY}`);
    const message = "is the machine's own bastion (192.0.2.10 port 22); a machine cannot jump through itself";
    // The bastion's address line comes first (ssh block), the machine's second.
    const machineLine = linesOf(text, "    address: 192.0.2.10")[1];
    expectIssues(text, [{ path: "machines[0].address", message, line: machineLine }]);
  });

  it("retries below 0 and above 20", () => {
    for (const [value, message] of [
      ["-1", "-1 must be >= 0"],
      ["21", "21 must be <= 20"],
    ]) {
      const text = insertAfter(BASE, "  connectTimeoutSeconds: 15", `  retries: ${value}`);
      expectIssue(text, "ssh.retries", message, `  retries: ${value}`);
    }
  });
});

describe("labels and taints", () => {
  it("a label in node-role.kubernetes.io (NodeRestriction)", () => {
    const line = '      node-role.kubernetes.io/worker: ""';
    const text = insertAfter(BASE, "      topology.kubernetes.io/zone: rack-1", line);
    expectIssue(text, 'machines[1].labels["node-role.kubernetes.io/worker"]', NODE_RESTRICTION, line);
  });

  it("a label in a k8s.io subdomain", () => {
    const line = "      team.k8s.io/owner: infra";
    const text = insertAfter(BASE, "      topology.kubernetes.io/zone: rack-1", line);
    expectIssue(text, 'machines[1].labels["team.k8s.io/owner"]', NODE_RESTRICTION, line);
  });

  it("allows labels the kubelet may set: topology zone, node./kubelet.kubernetes.io/ and own prefixes", () => {
    const text = insertAfter(
      BASE,
      "      topology.kubernetes.io/zone: rack-1",
      "      node.kubernetes.io/instance-type: m1",
      "      kubelet.kubernetes.io/pool: blue",
      "      example.com/team: infra",
      "      plain: yes",
    );
    assert.deepEqual(expectValid(text).machines[1]?.labels, {
      "topology.kubernetes.io/zone": "rack-1",
      "node.kubernetes.io/instance-type": "m1",
      "kubelet.kubernetes.io/pool": "blue",
      "example.com/team": "infra",
      plain: "yes",
    });
  });

  it("duplicate taint key and effect", () => {
    const line = "      - { key: dedicated, value: cpu, effect: NoSchedule }";
    const text = insertAfter(BASE, "        effect: NoSchedule", line);
    const message = "duplicates taints[0] (same key 'dedicated' and effect NoSchedule)";
    expectIssue(text, "machines[1].taints[1]", message, line);
  });

  it("allows the same taint key with another effect", () => {
    const text = insertAfter(BASE, "        effect: NoSchedule", "      - { key: dedicated, effect: NoExecute }");
    assert.deepEqual(expectValid(text).machines[1]?.taints, [
      { key: "dedicated", value: "gpu", effect: "NoSchedule" },
      { key: "dedicated", effect: "NoExecute" },
    ]);
  });
});

describe("YAML problems", () => {
  it("syntax error", () => {
    const text = replaceLine(BASE, "  name: lab", '  name: "lab');
    expectIssues(text, [
      {
        path: "",
        message: /^YAML syntax: Missing closing "quote/,
        line: lineOf(text, '  name: "lab'),
      },
    ]);
  });

  it("duplicate keys", () => {
    const text = insertAfter(BASE, "    os: debian-12", "    os: rocky-9");
    expectIssue(text, "", "YAML syntax: Map keys must be unique", "    os: rocky-9");
  });

  it("several documents in one file", () => {
    const text = `${BASE}---\ncluster: {}\n`;
    const message = "YAML syntax: Source contains multiple documents; please use YAML.parseAllDocuments()";
    expectIssue(text, "", message, "---");
  });
});

describe("several errors at once", () => {
  it("lists every schema error, in document order", () => {
    let text = replaceLine(BASE, "  name: lab", "  name: Lab");
    text = replaceLine(text, "  maxPods: 110", "  maxPods: 0");
    text = insertAfter(text, "  user: ops", "  port: 0");
    text = replaceLine(text, "    role: control-plane", "    role: boss");
    text = replaceLine(text, "        effect: NoSchedule", "        effect: Never");
    const issues = issuesOf(text);
    assert.equal(issues.length, 5);
    assertIssues(issues, [
      { path: "cluster.name", message: `"Lab" ${RFC1123}`, line: lineOf(text, "  name: Lab") },
      { path: "kubelet.maxPods", message: "0 must be >= 1", line: lineOf(text, "  maxPods: 0") },
      { path: "ssh.port", message: "0 must be >= 1", line: lineOf(text, "  port: 0") },
      {
        path: "machines[0].role",
        message: '"boss" is not allowed; must be one of: control-plane, worker, control-plane+worker',
        line: lineOf(text, "    role: boss"),
      },
      {
        path: "machines[1].taints[0].effect",
        message: '"Never" is not allowed; must be one of: NoSchedule, PreferNoSchedule, NoExecute',
        line: lineOf(text, "        effect: Never"),
      },
    ]);
  });

  it("lists every semantic error: cluster first, then each machine in order, then the machine list", () => {
    let text = replaceLine(BASE, '  kubernetesVersion: "1.36.4"', '  kubernetesVersion: "1.29.0"');
    text = replaceLine(text, "  containerRuntime: containerd", "  containerRuntime: cri-o");
    text = replaceLine(text, "  serviceCIDR: 10.96.0.0/12", "  serviceCIDR: 10.244.0.0/20");
    text = replaceLine(text, "    role: control-plane", "    role: worker");
    text = replaceLine(text, "  - name: worker-1", "  - name: cp-1");
    text = replaceLine(text, "    address: 192.0.2.21", "    address: 10.244.0.9");
    const issues = issuesOf(text);
    assert.equal(issues.length, 7);
    assertIssues(issues, [
      {
        path: "cluster.kubernetesVersion",
        message: /^'1\.29\.0' is not supported; supported versions: \d+\.\d+\.\d+(, \d+\.\d+\.\d+)*$/,
        line: lineOf(text, '  kubernetesVersion: "1.29.0"'),
      },
      {
        path: "cluster.containerRuntime",
        message: "'cri-o' is reserved for a later release; use containerd",
        line: lineOf(text, "  containerRuntime: cri-o"),
      },
      {
        path: "cluster.serviceCIDR",
        message: "'10.244.0.0/20' overlaps podCIDR '10.244.0.0/16'",
        line: lineOf(text, "  serviceCIDR: 10.244.0.0/20"),
      },
      {
        path: "machines[1].name",
        message: "'cp-1' is already the name of machines[0]",
        line: linesOf(text, "  - name: cp-1")[1],
      },
      {
        path: "machines[1].address",
        message: "'10.244.0.9' lies inside the cluster podCIDR '10.244.0.0/16'",
        line: lineOf(text, "    address: 10.244.0.9"),
      },
      {
        path: "machines[1].address",
        message: "'10.244.0.9' lies inside the cluster serviceCIDR '10.244.0.0/20'",
        line: lineOf(text, "    address: 10.244.0.9"),
      },
      { path: "machines", message: NEEDS_CONTROL_PLANE, line: lineOf(text, "machines:") },
    ]);
  });

  it("puts every issue, with its position, into the error message", () => {
    let text = replaceLine(BASE, "  name: lab", "  name: Lab");
    text = replaceLine(text, "      port: 2222", "      port: 0");
    try {
      parseStack(text, FILE);
      assert.fail("accepted");
    } catch (error) {
      assert.ok(error instanceof StackValidationError);
      assert.equal(
        error.message,
        [
          "invalid stack file:",
          `  stacks/test.yaml:3:9: cluster.name: "Lab" ${RFC1123}`,
          "  stacks/test.yaml:46:13: machines[1].ssh.port: 0 must be >= 1",
        ].join("\n"),
      );
    }
  });
});

describe("loadStackFile", () => {
  const dir = mkdtempSync(join(tmpdir(), "nodeforge-stack-invalid-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reports a file that does not exist", () => {
    const file = join(dir, "missing.yaml");
    assert.throws(
      () => loadStackFile(file),
      (error: unknown) => {
        assert.ok(error instanceof StackValidationError);
        assertIssues(
          error.issues,
          [{ path: "", message: `cannot read: ENOENT: no such file or directory, open '${file}'`, line: undefined }],
          file,
        );
        assert.equal(
          formatIssue(error.issues[0] as StackIssue),
          `${file}: (document): cannot read: ENOENT: no such file or directory, open '${file}'`,
        );
        return true;
      },
    );
  });

  it("reports a directory given as the stack file", () => {
    assert.throws(
      () => loadStackFile(dir),
      (error: unknown) => {
        assert.ok(error instanceof StackValidationError);
        const expected = [
          { path: "", message: "cannot read: EISDIR: illegal operation on a directory, read", line: undefined },
        ];
        assertIssues(error.issues, expected, dir);
        return true;
      },
    );
  });

  it("names the file it read in each issue", () => {
    const file = join(dir, "bad.yaml");
    writeFileSync(file, replaceLine(BASE, "    arch: arm64", "    arch: s390x"));
    assert.throws(
      () => loadStackFile(file),
      (error: unknown) => {
        assert.ok(error instanceof StackValidationError);
        const expected = [
          { path: "machines[1].arch", message: '"s390x" is not allowed; must be one of: amd64, arm64', line: 43 },
        ];
        assertIssues(error.issues, expected, file);
        return true;
      },
    );
  });
});

/** Shell metacharacters appended to an otherwise valid value. */
const PAYLOADS = ["$(id)", "`id`", "'x'", '"x"', "\nid", ";id", "${IFS}id"];

/** How a message quotes a rejected value: as JSON, shortened to 57 characters and "..." past 60. */
function shown(value: string): string {
  const json = JSON.stringify(value);
  return json.length > 60 ? `${json.slice(0, 57)}...` : json;
}

interface InjectionField {
  /** The line of BASE that holds the field. */
  line: string;
  /** The valid value the payload is appended to. */
  valid: string;
  /** The line with the field set to `yamlValue` (a double-quoted YAML scalar). */
  set: (yamlValue: string) => string;
  /** The issue path for the rejected raw value. */
  path: (rawValue: string) => string;
  /** What the message says after the quoted value. */
  sentence: string;
}

/** A `key: value` line whose value is the field. */
function valueField(line: string, path: string, sentence: string): InjectionField {
  const colon = line.indexOf(": ");
  const valid = line.slice(colon + 2).replace(/^"(.*)"$/, "$1");
  return { line, valid, set: (v) => `${line.slice(0, colon)}: ${v}`, path: () => path, sentence };
}

const KEY_NAME = "must be a Pulumi config key name: letters, digits and '_'";
const QUANTITY = "must be a Kubernetes quantity like 100m or 256Mi";
const CRICTL_LINE = "  crictlBaseUrl: https://github.com/kubernetes-sigs/cri-tools/releases/download";
const CONTAINERD_LINE = "  containerdBaseUrl: https://github.com/containerd/containerd/releases/download";

const INJECTION_FIELDS: Record<string, InjectionField> = {
  "cluster.name": valueField("  name: lab", "cluster.name", RFC1123),
  "cluster.kubernetesVersion": valueField(
    '  kubernetesVersion: "1.36.4"',
    "cluster.kubernetesVersion",
    "must be a version like 1.36.4 (no leading 'v')",
  ),
  "cluster.podCIDR": valueField("  podCIDR: 10.244.0.0/16", "cluster.podCIDR", "must be a CIDR like 10.244.0.0/16"),
  "cluster.serviceCIDR": valueField(
    "  serviceCIDR: 10.96.0.0/12",
    "cluster.serviceCIDR",
    "must be a CIDR like 10.96.0.0/12",
  ),
  "cluster.dnsDomain": valueField(
    "  dnsDomain: cluster.local",
    "cluster.dnsDomain",
    "must be a lowercase DNS domain like cluster.local",
  ),
  "machine name": valueField("  - name: cp-1", "machines[0].name", RFC1123),
  "machine address": valueField(
    "    address: 192.0.2.10",
    "machines[0].address",
    "must be an IPv4 address, an IPv6 address or a DNS name",
  ),
  "machine hostKey": valueField(`    hostKey: ${HOST_KEY_CP}`, "machines[0].hostKey", HOST_KEY_SENTENCE),
  "ssh.user": valueField(
    "  user: ops",
    "ssh.user",
    "must be a POSIX user name: lowercase letters, digits, '_' and '-'",
  ),
  "ssh.privateKeyConfig": valueField("  privateKeyConfig: sshPrivateKey", "ssh.privateKeyConfig", KEY_NAME),
  "ssh.sudoPasswordConfig": valueField(
    "      sudoPasswordConfig: sudoPassword",
    "machines[1].ssh.sudoPasswordConfig",
    KEY_NAME,
  ),
  "label key": {
    line: "      topology.kubernetes.io/zone: rack-1",
    valid: "topology.kubernetes.io/zone",
    set: (v) => `      ${v}: rack-1`,
    path: (raw) => `machines[1].labels[${JSON.stringify(raw)}]`,
    sentence: LABEL_KEY,
  },
  "label value": valueField(
    "      topology.kubernetes.io/zone: rack-1",
    'machines[1].labels["topology.kubernetes.io/zone"]',
    LABEL_VALUE,
  ),
  "taint key": valueField(
    "      - key: dedicated",
    "machines[1].taints[0].key",
    "must be a taint key: an optional DNS prefix and '/', then a name of letters, digits, '-', '_' and '.'",
  ),
  "taint value": valueField(
    "        value: gpu",
    "machines[1].taints[0].value",
    "must be a taint value: letters, digits, '-', '_' and '.', starting and ending with a letter or digit",
  ),
  "artifacts.kubernetesBaseUrl": valueField(
    "  kubernetesBaseUrl: https://dl.k8s.io/release",
    "artifacts.kubernetesBaseUrl",
    HTTP_URL,
  ),
  "artifacts.crictlBaseUrl": valueField(CRICTL_LINE, "artifacts.crictlBaseUrl", HTTP_URL),
  "artifacts.containerdBaseUrl": valueField(CONTAINERD_LINE, "artifacts.containerdBaseUrl", HTTP_URL),
  "artifacts.runcBaseUrl": valueField(RUNC_LINE, "artifacts.runcBaseUrl", HTTP_URL),
  "registry mirror host": {
    line: "    docker.io:",
    valid: "docker.io",
    set: (v) => `    ${v}:`,
    path: (raw) => `containerd.registryMirrors[${JSON.stringify(raw)}]`,
    sentence: "must be a registry host like docker.io or registry.example.com:5000",
  },
  "registry mirror URL": {
    line: "      - https://mirror.example.internal",
    valid: "https://mirror.example.internal",
    set: (v) => `      - ${v}`,
    path: () => 'containerd.registryMirrors["docker.io"][0]',
    sentence: HTTP_URL,
  },
  "kubelet systemReserved quantity": valueField("    cpu: 100m", "kubelet.systemReserved.cpu", QUANTITY),
  "kubelet kubeReserved quantity": valueField(
    "    ephemeral-storage: 1Gi",
    'kubelet.kubeReserved["ephemeral-storage"]',
    QUANTITY,
  ),
  "kubelet evictionHard threshold": valueField(
    "    memory.available: 100Mi",
    'kubelet.evictionHard["memory.available"]',
    "must be a quantity like 100Mi or a percentage like 10%",
  ),
};

describe("shell metacharacters in user-settable strings are rejected", () => {
  for (const [name, field] of Object.entries(INJECTION_FIELDS)) {
    describe(name, () => {
      it("accepts the plain value, double-quoted", () => {
        expectValid(replaceLine(BASE, field.line, field.set(JSON.stringify(field.valid))));
      });
      for (const payload of PAYLOADS) {
        it(`rejects ${JSON.stringify(payload)}`, () => {
          const raw = field.valid + payload;
          const line = field.set(JSON.stringify(raw));
          const text = replaceLine(BASE, field.line, line);
          const message = `${shown(raw)} ${field.sentence}`;
          expectIssues(text, [{ path: field.path(raw), message, line: lineOf(text, line) }]);
        });
      }
    });
  }
});

describe("external etcd (etcd.external.machines)", () => {
  const HOST_KEY_ETCD = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK3vJEmTrUt6Y+2pBpfHXAl3qpPP9ETGc5JOc7g3J9y4";
  const member = (n: number): string[] => [
    `      - name: etcd-${n}`,
    `        address: 192.0.2.3${n}`,
    "        os: debian-12",
    `        hostKey: ${HOST_KEY_ETCD}`,
  ];
  /** BASE with an etcd section of `count` members before `machines:`. */
  function withEtcd(count: number): string {
    const block = ["etcd:", "  external:", "    machines:", ...Array.from({ length: count }, (_, i) => member(i + 1))];
    return replaceLine(BASE, "machines:", [...block.flat(), "machines:"].join("\n"));
  }
  const EVEN = (n: number): string =>
    `has ${n} members; an etcd cluster needs an odd number (1, 3, 5 or 7): ${n} members tolerate no more failures than ${n - 1}`;

  it("three members are valid: stack-wide ssh settings apply, stacked etcd when the section is absent", () => {
    const spec = expectValid(withEtcd(3));
    assert.deepEqual(
      spec.etcd?.external.machines.map((m) => [m.name, m.address, m.os, m.ssh.user, m.ssh.sudo, m.ssh.port]),
      [1, 2, 3].map((n) => [`etcd-${n}`, `192.0.2.3${n}`, "debian-12", "ops", true, 22]),
    );
    assert.equal(expectValid(withEtcd(1)).etcd?.external.machines.length, 1);
    assert.equal(expectValid(withEtcd(5)).etcd?.external.machines.length, 5);
    assert.equal(expectValid(BASE).etcd, undefined);
  });

  it("an even number of members is refused, naming the path", () => {
    for (const count of [2, 4, 6]) {
      const text = withEtcd(count);
      expectIssue(text, "etcd.external.machines", EVEN(count), "    machines:");
    }
  });

  it("more than seven members are refused", () => {
    const text = withEtcd(9);
    expectIssue(
      text,
      "etcd.external.machines",
      "has 9 members; at most 7 (every write waits for a majority of them)",
      "    machines:",
    );
  });

  it("no members", () => {
    const text = replaceLine(BASE, "machines:", ["etcd:", "  external:", "    machines: []", "machines:"].join("\n"));
    expectIssue(text, "etcd.external.machines", "must have at least 1 item(s)", "    machines: []");
  });

  it("duplicate member names", () => {
    const text = replaceLine(withEtcd(3), "      - name: etcd-2", "      - name: etcd-1");
    expectIssues(text, [
      {
        path: "etcd.external.machines[1].name",
        message: "'etcd-1' is already the name of etcd.external.machines[0]",
        line: linesOf(text, "      - name: etcd-1")[1],
      },
    ]);
  });

  it("a member named like a Kubernetes machine", () => {
    const text = replaceLine(withEtcd(3), "      - name: etcd-3", "      - name: worker-1");
    const message = "'worker-1' is already the name of machines[1]; etcd members need machines of their own";
    expectIssue(text, "etcd.external.machines[2].name", message, "      - name: worker-1");
  });

  it("duplicate member addresses, and a member on a Kubernetes machine's address", () => {
    let text = replaceLine(withEtcd(3), "        address: 192.0.2.32", "        address: 192.0.2.31");
    text = replaceLine(text, "        address: 192.0.2.33", "        address: 192.0.2.10");
    expectIssues(text, [
      {
        path: "etcd.external.machines[1].address",
        message: "'192.0.2.31' is already the address of etcd.external.machines[0]",
        line: linesOf(text, "        address: 192.0.2.31")[1],
      },
      {
        path: "etcd.external.machines[2].address",
        message: "'192.0.2.10' is already the address of machines[0]; etcd members need machines of their own",
        line: lineOf(text, "        address: 192.0.2.10"),
      },
    ]);
  });

  it("a member address that is a DNS name", () => {
    const text = replaceLine(withEtcd(3), "        address: 192.0.2.32", "        address: etcd-2.example");
    const message =
      '"etcd-2.example" must be an IPv4 address (etcd members are reached by address; IPv6 and DNS names are not supported yet)';
    expectIssue(text, "etcd.external.machines[1].address", message, "        address: etcd-2.example");
  });

  it("a member OS other than debian-12", () => {
    const text = replaceLine(withEtcd(1), "        os: debian-12", "        os: rocky-9");
    const message = '"rocky-9" is not allowed; must be one of: debian-12';
    expectIssue(text, "etcd.external.machines[0].os", message, "        os: rocky-9");
  });

  it("a member without hostKey, and an unknown property", () => {
    let text = removeLine(withEtcd(1), `        hostKey: ${HOST_KEY_ETCD}`);
    expectIssue(text, "etcd.external.machines[0].hostKey", "is required", "      - name: etcd-1");
    text = insertAfter(withEtcd(1), "  external:", "    members: 3");
    expectIssue(
      text,
      "etcd.external.members",
      unknownProperty("/properties/etcd/properties/external"),
      "    members: 3",
    );
  });
});
