/**
 * The pod network plugin (stack `cni`): what a stack may say and what validation refuses, with the positions a user
 * sees; resolveCni; the apply and delete scripts, checked by shellcheck and dash and RUN on this host (the manifest
 * test doubles served by a local HTTP server, a kubectl double first in PATH, every absolute path moved into a temp
 * dir); and, under Pulumi's mocks, the cluster-network step (kube-proxy, then the CNI plugin) and what every node's
 * reset removes.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { parseAllDocuments } from "yaml";
import {
  CNI_DIR,
  cniLeftovers,
  FLANNEL_DEFAULT_NETWORK,
  resolveCni,
  type ResolvedCni,
} from "../../modules/cluster-config";
import { Cluster } from "../../modules/components";
import { clusterNetworkScripts } from "../../modules/plan";
import { DEFAULT_PINS, type CniPlugin, type Pins } from "../../modules/pins";
import { formatIssue, parseStack, StackValidationError, type MachineSpec, type StackSpec } from "../../modules/stack";
import { cniManifestDouble } from "../harness/cni-doubles";
import { kubernetesSchemaErrors } from "../harness/k8s-validate";
import {
  captureProgram,
  FAKE_CLUSTER_PKI,
  findResource,
  outputValue,
  runOf,
  STEP_TYPE,
  stepFiles,
  type CapturedResource,
} from "../harness/pulumi-mocks";
import { ipv6StackYaml, runProcess, type ProcessResult } from "../harness/render-fixtures";
import { machineLines } from "../harness/cluster-stacks";
import { assertCleanShell } from "../harness/shell-check";
import { serveTexts, type TextServer } from "../harness/text-server";

const FILE = "lab.yaml";
const SHA = "3f".repeat(32);
const OTHER_SHA = "a1".repeat(32);
const FLANNEL = DEFAULT_PINS.cni.flannel;
const CALICO = DEFAULT_PINS.cni.calico;
const POD_CIDR = "10.32.0.0/16";

const TMP = mkdtempSync(join(tmpdir(), "nf-cni-"));
after(() => rmSync(TMP, { recursive: true, force: true }));

interface StackOptions {
  /** Top-level lines (the `cni` block), written before `machines:`. */
  cni?: string[];
  /** Lines added to the cluster block (two spaces of indentation are added). */
  cluster?: string[];
  controlPlanes?: number;
}

/**
 * A stack file: `controlPlanes` control planes (cp-1...) and one worker (worker-1); with more than one control plane,
 * an external load balancer in front of them.
 */
function stackText({ cni = [], cluster = [], controlPlanes = 1 }: StackOptions = {}): string {
  const machines: string[] = [];
  for (let i = 1; i <= controlPlanes; i++)
    machines.push(...machineLines(`cp-${i}`, `192.0.2.${9 + i}`, "control-plane"));
  machines.push(...machineLines("worker-1", "192.0.2.21", "worker"));
  return [
    "cluster:",
    "  name: lab",
    '  kubernetesVersion: "1.36.4"',
    ...(controlPlanes > 1 ? ["  controlPlaneEndpoint: 192.0.2.100:6443"] : []),
    ...cluster.map((l) => `  ${l}`),
    ...cni,
    "machines:",
    ...machines,
    "",
  ].join("\n");
}

function parse(text: string, pins: Pins = DEFAULT_PINS): StackSpec {
  return parseStack(text, FILE, pins);
}

/** The issues as the CLI prints them (`file:line:col: path: message`); fails the test when the stack is accepted. */
function printedIssues(text: string, pins: Pins = DEFAULT_PINS): string[] {
  try {
    parseStack(text, FILE, pins);
  } catch (error) {
    assert.ok(error instanceof StackValidationError, `expected StackValidationError, got ${String(error)}`);
    return error.issues.map(formatIssue);
  }
  assert.fail("the stack file was accepted");
}

/** `file:line:col` of `value` on the one line of `text` equal to `line`. */
function where(text: string, line: string, value: string): string {
  const lines = text.split("\n");
  assert.equal(lines.filter((l) => l === line).length, 1, `test setup: ${JSON.stringify(line)} must occur once`);
  const column = line.indexOf(value);
  assert.ok(column >= 0, `test setup: ${JSON.stringify(value)} is on ${JSON.stringify(line)}`);
  return `${FILE}:${lines.indexOf(line) + 1}:${column + 1}`;
}

/** DEFAULT_PINS with a checksum for each plugin, as once a maintainer has recorded them. */
function pinsWithChecksums(sha = SHA): Pins {
  const pins = structuredClone(DEFAULT_PINS);
  pins.cni.flannel.sha256 = sha;
  pins.cni.calico.sha256 = sha;
  return pins;
}

describe("stack cni: what parses and what it normalizes to", () => {
  it("defaults to plugin none, with nothing else, when the stack has no cni", () => {
    assert.deepEqual(parse(stackText()).cni, { plugin: "none" });
    assert.deepEqual(parse(stackText({ cni: ["cni: none"] })).cni, { plugin: "none" });
    assert.deepEqual(parse(stackText({ cni: ["cni: {}"] })).cni, { plugin: "none" });
  });

  it("reads `cni: flannel` as { plugin: flannel }: the same settings and the same install", () => {
    const pins = pinsWithChecksums();
    const short = parse(stackText({ cni: ["cni: flannel"] }), pins);
    const block = parse(stackText({ cni: ["cni:", "  plugin: flannel"] }), pins);
    const flow = parse(stackText({ cni: ["cni: { plugin: flannel }"] }), pins);
    assert.deepEqual(short.cni, { plugin: "flannel" });
    assert.deepEqual(block.cni, short.cni);
    assert.deepEqual(flow.cni, short.cni);

    // With the checksum in the stack instead of the pins: the same settings plus the sha256, the same install.
    const withSha = parse(stackText({ cni: ["cni:", "  plugin: flannel", `  sha256: ${SHA}`] }));
    assert.deepEqual(withSha.cni, { plugin: "flannel", sha256: SHA });
    assert.deepEqual(resolveCni(withSha, DEFAULT_PINS), resolveCni(short, pins));
  });

  it("keeps a mirror URL and a checksum as written", () => {
    const url = "https://mirror.internal:8443/~cni/kube%2Dflannel/v0.27.3/kube-flannel.yml";
    const spec = parse(stackText({ cni: ["cni:", "  plugin: calico", `  manifestUrl: ${url}`, `  sha256: ${SHA}`] }));
    assert.deepEqual(spec.cni, { plugin: "calico", manifestUrl: url, sha256: SHA });
  });
});

describe("stack cni: what validation refuses, where, and why", () => {
  it("an unknown plugin name: one message at cni listing the allowed names, no if/then/else noise", () => {
    const text = stackText({ cni: ["cni: weave"] });
    const issues = printedIssues(text);
    assert.deepEqual(issues, [
      `${where(text, "cni: weave", "weave")}: cni: "weave" is not allowed; must be one of: flannel, calico, none`,
    ]);
    assert.ok(!issues.some((i) => /must match|then|else|schema/.test(i)), issues.join("\n"));

    const nested = stackText({ cni: ["cni:", "  plugin: weave"] });
    assert.deepEqual(printedIssues(nested), [
      `${where(nested, "  plugin: weave", "weave")}: cni.plugin: "weave" is not allowed; must be one of: flannel, calico, none`,
    ]);
  });

  it("a value that is neither a name nor an object: one message saying what cni may be", () => {
    // A scalar is pointed at itself, a collection at its key.
    for (const [value, at] of [
      ["5", "5"],
      ["true", "true"],
      ["[flannel]", "cni"],
    ] as const) {
      const text = stackText({ cni: [`cni: ${value}`] });
      const issues = printedIssues(text);
      assert.equal(issues.length, 1, issues.join("\n"));
      assert.match(
        issues[0] ?? "",
        new RegExp(
          `^${where(text, `cni: ${value}`, at)}: cni: .+ must be a plugin name \\(flannel, calico or none\\) ` +
            "or an object with plugin, manifestUrl and sha256$",
        ),
      );
    }
  });

  it("an unknown key inside cni, named, with the keys allowed there", () => {
    const text = stackText({ cni: ["cni:", "  plugin: flannel", `  sha256: ${SHA}`, "  mtu: 1450"] });
    assert.deepEqual(printedIssues(text), [
      `${where(text, "  mtu: 1450", "1450")}: cni.mtu: unknown property; allowed here: plugin, manifestUrl, sha256`,
    ]);
  });

  it("a malformed sha256: the x-invalid sentence, at the value", () => {
    for (const bad of ["abc123", "3F".repeat(32), `${"3f".repeat(31)}zz`]) {
      const line = `  sha256: "${bad}"`;
      const text = stackText({ cni: ["cni:", "  plugin: flannel", line] });
      const shown = JSON.stringify(bad).length > 60 ? `${JSON.stringify(bad).slice(0, 57)}...` : JSON.stringify(bad);
      assert.deepEqual(printedIssues(text), [
        `${where(text, line, `"${bad}"`)}: cni.sha256: ${shown} must be a sha256: 64 lowercase hex digits`,
      ]);
    }
  });

  it("a manifestUrl that is not a plain http(s) URL: the x-invalid sentence, at the value", () => {
    for (const bad of [
      "ftp://mirror.internal/kube-flannel.yml",
      "http://mirror.internal/$(reboot)",
      "mirror.internal/x",
    ]) {
      const line = `  manifestUrl: "${bad}"`;
      const text = stackText({ cni: ["cni:", "  plugin: flannel", line, `  sha256: ${SHA}`] });
      assert.deepEqual(printedIssues(text), [
        `${where(text, line, `"${bad}"`)}: cni.manifestUrl: "${bad}" must be an http(s) URL without spaces, ` +
          "quotes or shell characters",
      ]);
    }
  });

  it("a plugin without a checksum while nodeforge pins none: refused at cni.sha256, saying how to get one", () => {
    assert.equal(FLANNEL.sha256, undefined, "test setup: DEFAULT_PINS has no flannel checksum");
    assert.equal(CALICO.sha256, undefined, "test setup: DEFAULT_PINS has no calico checksum");
    const text = stackText({ cni: ["cni: flannel"] });
    assert.deepEqual(printedIssues(text), [
      `${where(text, "cni: flannel", "flannel")}: cni.sha256: is required: nodeforge has no verified sha256 for ` +
        `flannel ${FLANNEL.version} (${FLANNEL.manifestUrl}); run \`nodeforge cni-pin ${FILE}\` where that URL is ` +
        "reachable, review the manifest and add the sha256 it prints",
    ]);
    assert.match(FLANNEL.version, /^v\d+\.\d+\.\d+$/);

    // A mirror URL is the one named: that is where cni-pin downloads from.
    const mirror = "http://mirror.internal/cni/calico.yaml";
    const calico = stackText({ cni: ["cni:", "  plugin: calico", `  manifestUrl: ${mirror}`] });
    // The checksum is missing from the cni block: the issue points at its key.
    assert.deepEqual(printedIssues(calico), [
      `${where(calico, "cni:", "cni")}: cni.sha256: is required: nodeforge has no verified sha256 for calico ` +
        `${CALICO.version} (${mirror}); run \`nodeforge cni-pin ${FILE}\` where that URL is reachable, review the ` +
        "manifest and add the sha256 it prints",
    ]);
  });

  it("the same stack is accepted once the pins carry a checksum, which the install then uses", () => {
    const pins = pinsWithChecksums(OTHER_SHA);
    const spec = parse(stackText({ cni: ["cni: flannel"] }), pins);
    assert.deepEqual(spec.cni, { plugin: "flannel" });
    assert.equal(resolveCni(spec, pins)?.sha256, OTHER_SHA);
    assert.equal(DEFAULT_PINS.cni.flannel.sha256, undefined, "structuredClone: DEFAULT_PINS itself is unchanged");
  });

  it("plugin none with a manifestUrl or a sha256: each refused as having no use", () => {
    const url = "http://mirror.internal/x.yml";
    const text = stackText({ cni: ["cni:", "  plugin: none", `  manifestUrl: ${url}`, `  sha256: ${SHA}`] });
    assert.deepEqual(printedIssues(text), [
      `${where(text, `  manifestUrl: ${url}`, url)}: cni.manifestUrl: has no use with plugin none`,
      `${where(text, `  sha256: ${SHA}`, SHA)}: cni.sha256: has no use with plugin none`,
    ]);
    const onlySha = stackText({ cni: ["cni:", `  sha256: ${SHA}`] });
    assert.deepEqual(printedIssues(onlySha), [
      `${where(onlySha, `  sha256: ${SHA}`, SHA)}: cni.sha256: has no use with plugin none`,
    ]);
  });

  it("an IPv6 pod network with flannel or calico: refused at cluster.podCIDR; with none it is fine", () => {
    const base = ipv6StackYaml();
    assert.equal(parse(base).cni.plugin, "none", "test setup: the IPv6 fixture stack is valid as it is");
    for (const plugin of ["flannel", "calico"]) {
      const text = `${base}cni:\n  plugin: ${plugin}\n  sha256: ${SHA}\n`;
      assert.deepEqual(printedIssues(text), [
        `${where(text, "  podCIDR: fd00:10:244::/56", "fd00:10:244::/56")}: cluster.podCIDR: is IPv6: nodeforge ` +
          `sets up ${plugin} for an IPv4 pod network only; use cni: none and install it yourself`,
      ]);
    }
  });
});

describe("resolveCni", () => {
  it("is undefined for plugin none", () => {
    assert.equal(resolveCni(parse(stackText()), pinsWithChecksums()), undefined);
  });

  it("takes the stack's manifestUrl and sha256 over the pin's", () => {
    const url = "http://mirror.internal/cni/kube-flannel.yml";
    const pins = pinsWithChecksums(OTHER_SHA);
    const mirrorOnly = parse(stackText({ cni: ["cni:", "  plugin: flannel", `  manifestUrl: ${url}`] }), pins);
    assert.equal(resolveCni(mirrorOnly, pins)?.manifestUrl, url);
    assert.equal(resolveCni(mirrorOnly, pins)?.sha256, OTHER_SHA);
    const both = parse(stackText({ cni: ["cni:", "  plugin: flannel", `  manifestUrl: ${url}`, `  sha256: ${SHA}`] }));
    assert.deepEqual(resolveCni(both, pins), {
      plugin: "flannel",
      version: FLANNEL.version,
      manifestUrl: url,
      sha256: SHA,
      manifestPath: "/etc/kubernetes/nodeforge/cni/flannel.yaml",
      edits: [{ from: '"Network": "10.244.0.0/16"', to: '"Network": "10.244.0.0/16"' }],
    });
    // Without a mirror: the release URL.
    assert.equal(resolveCni(parse(stackText({ cni: ["cni: calico"] }), pins), pins)?.manifestUrl, CALICO.manifestUrl);
  });

  it("maps flannel's default pod network to the stack's podCIDR; calico needs no edit", () => {
    assert.equal(FLANNEL_DEFAULT_NETWORK, "10.244.0.0/16");
    const pins = pinsWithChecksums();
    const flannel = resolveCni(
      parse(stackText({ cni: ["cni: flannel"], cluster: [`podCIDR: ${POD_CIDR}`] }), pins),
      pins,
    );
    assert.deepEqual(flannel?.edits, [{ from: '"Network": "10.244.0.0/16"', to: `"Network": "${POD_CIDR}"` }]);
    assert.equal(flannel?.manifestPath, `${CNI_DIR}/flannel.yaml`);
    const calico = resolveCni(
      parse(stackText({ cni: ["cni: calico"], cluster: [`podCIDR: ${POD_CIDR}`] }), pins),
      pins,
    );
    assert.deepEqual(calico?.edits, []);
    assert.equal(calico?.version, CALICO.version);
    assert.equal(calico?.manifestPath, "/etc/kubernetes/nodeforge/cni/calico.yaml");
  });

  it("throws for a programmatic caller when no checksum is known at all", () => {
    const spec = parseStack(stackText({ cni: ["cni: flannel"] }), FILE, DEFAULT_PINS, { requireCniChecksum: false });
    assert.throws(() => resolveCni(spec, DEFAULT_PINS), /lab\.yaml: cni\.sha256: is required for flannel v/);
  });
});

describe("the CNI scripts, as rendered", () => {
  // Schema-valid, but quoted by the sh helper: '~' is not among the characters it leaves bare ('%' is).
  const url = "http://mirror.internal:8080/~ops/kube%2Dnet/manifest.yml";
  for (const plugin of ["flannel", "calico"] as const) {
    it(`${plugin}: the apply and delete scripts pass shellcheck -s sh (style) and dash -n`, () => {
      const stack = parse(
        stackText({
          cni: ["cni:", `  plugin: ${plugin}`, `  manifestUrl: ${url}`, `  sha256: ${SHA}`],
          cluster: [`podCIDR: ${POD_CIDR}`],
        }),
      );
      const cni = resolveCni(stack, DEFAULT_PINS) as ResolvedCni;
      const { script, deleteScript } = clusterNetworkScripts(cni, stack.machines[0] as MachineSpec);
      assert.ok(script.startsWith("#!/bin/sh\n") && deleteScript.startsWith("#!/bin/sh\n"));
      assertCleanShell(`${plugin} apply`, script);
      assertCleanShell(`${plugin} delete`, deleteScript);
      const download = `/etc/kubernetes/nodeforge/cni/${plugin}.yaml.nodeforge-download`;
      assert.ok(script.includes(`\nnf_fetch '${url}' ${SHA} ${download}\n`), "the URL reaches the shell single-quoted");
      assert.ok(!script.includes(` ${url}`), "never unquoted");
      assert.ok(script.includes(`-f /etc/kubernetes/nodeforge/cni/${plugin}.yaml\n`));
      if (plugin === "flannel") {
        assert.ok(script.includes(`-v from='"Network": "10.244.0.0/16"' -v to='"Network": "${POD_CIDR}"'`));
      } else assert.ok(!script.includes("awk"), "calico's manifest is applied as downloaded");
    });
  }

  it("a URL with only '%' escapes needs no quotes, and stays one word", () => {
    const percent = "http://mirror.internal/a%20b/kube-flannel.yml";
    const stack = parse(
      stackText({ cni: ["cni:", "  plugin: flannel", `  manifestUrl: ${percent}`, `  sha256: ${SHA}`] }),
    );
    const { script } = clusterNetworkScripts(resolveCni(stack, DEFAULT_PINS), stack.machines[0] as MachineSpec);
    assertCleanShell("percent URL", script);
    assert.ok(
      script.includes(`\nnf_fetch ${percent} ${SHA} /etc/kubernetes/nodeforge/cni/flannel.yaml.nodeforge-download\n`),
    );
  });
});

/** The tab-separated arguments of each call a double recorded, one call a line. */
function calls(log: string): string[][] {
  return existsSync(log)
    ? readFileSync(log, "utf8")
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => l.split("\t"))
    : [];
}

/** Writes an executable sh script. */
function writeExecutable(path: string, lines: string[]): void {
  writeFileSync(path, [...lines, ""].join("\n"));
  chmodSync(path, 0o755);
}

/** A kubectl double: records its arguments (tab-separated, one call a line) and keeps a copy of the -f file. */
function kubectlDouble(dir: string): void {
  writeExecutable(join(dir, "kubectl"), [
    "#!/bin/sh",
    'printf "%s" "$1" >>"$NF_TEST_KUBECTL_LOG"',
    "shift",
    'for nf_arg; do printf "\\t%s" "$nf_arg" >>"$NF_TEST_KUBECTL_LOG"; done',
    'printf "\\n" >>"$NF_TEST_KUBECTL_LOG"',
    'nf_next=""',
    'for nf_arg; do if [ "$nf_next" = f ]; then cp "$nf_arg" "$NF_TEST_KUBECTL_LOG.file"; fi; nf_next=""; if [ "$nf_arg" = -f ]; then nf_next=f; fi; done',
  ]);
}

const MANIFEST_KINDS: Record<CniPlugin, string[]> = {
  flannel: ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet"],
  calico: ["ServiceAccount", "CustomResourceDefinition", "DaemonSet"],
};

/** Every document of a manifest: parsed without YAML errors, of the expected kinds, each valid against its schema. */
async function assertManifestValid(text: string, kinds: string[]): Promise<Record<string, unknown>[]> {
  const objects = parseAllDocuments(text).map((doc) => {
    assert.deepEqual(doc.errors, []);
    return doc.toJS() as Record<string, unknown>;
  });
  assert.deepEqual(
    objects.map((o) => o.kind),
    kinds,
  );
  for (const object of objects) {
    assert.deepEqual(await kubernetesSchemaErrors(object), [], `${String(object.kind)} is schema-valid`);
    // The check can fail: the same object with a malformed metadata is refused.
    assert.notDeepEqual(
      await kubernetesSchemaErrors({ ...object, metadata: 5 }),
      [],
      `${String(object.kind)}: bad metadata`,
    );
  }
  return objects;
}

describe("the CNI apply and delete scripts, run on this host", () => {
  const bin = join(TMP, "bin");
  /** URL path -> body the server answers with (404 for anything else). */
  const served = new Map<string, string>();
  let server: TextServer;
  let base = "";
  let runs = 0;

  before(async () => {
    mkdirSync(bin);
    kubectlDouble(bin);
    server = await serveTexts(served);
    base = server.base;
  });
  after(() => server.close());

  /**
   * A machine of its own (a temp dir standing for /), the plugin's manifest served at a URL with '%' in it, and the
   * scripts rendered for a stack naming that URL, `sha` (default: the served bytes' own) and podCIDR 10.32.0.0/16.
   */
  function machine(plugin: CniPlugin, body: string, sha = createHash("sha256").update(body).digest("hex")) {
    const root = mkdtempSync(join(TMP, `run-${++runs}-`));
    const path = `/${runs}/a%20b/${plugin}.yaml`;
    served.set(path, body);
    const url = `${base}${path}`;
    const stack = parse(
      stackText({
        cni: ["cni:", `  plugin: ${plugin}`, `  manifestUrl: ${url}`, `  sha256: ${sha}`],
        cluster: [`podCIDR: ${POD_CIDR}`],
      }),
    );
    const cni = resolveCni(stack, DEFAULT_PINS) as ResolvedCni;
    const scripts = clusterNetworkScripts(cni, stack.machines[0] as MachineSpec);
    const etc = join(root, "etc-kubernetes");
    mkdirSync(etc);
    writeFileSync(join(etc, "admin.conf"), "admin.conf test double\n");
    // The step applies kube-proxy's manifest (a file of the step, written before its script runs) first.
    mkdirSync(join(etc, "nodeforge"));
    writeFileSync(join(etc, "nodeforge", "kube-proxy.yaml"), "kube-proxy manifest test double\n");
    const log = join(root, "kubectl.log");
    return {
      root,
      url,
      path,
      admin: join(etc, "admin.conf"),
      dir: join(etc, "nodeforge", "cni"),
      manifest: join(etc, "nodeforge", "cni", `${plugin}.yaml`),
      apply: () => runLocally(root, scripts.script, { NF_TEST_KUBECTL_LOG: log }),
      remove: () => runLocally(root, scripts.deleteScript, { NF_TEST_KUBECTL_LOG: log }),
      /** kubectl's calls for the CNI plugin (kube-proxy's, by the same step, left out). */
      kubectl: () => calls(log).filter((call) => !call.some((arg) => arg.endsWith("/kube-proxy.yaml"))),
      /** The last file kubectl was given with -f, as it was then. */
      kubectlFile: () => readFileSync(`${log}.file`, "utf8"),
    };
  }

  /** kubectl's arguments for nodeforge's server-side apply of the machine's manifest. */
  const serverSideApply = (m: { admin: string; manifest: string }) => [
    "--kubeconfig",
    m.admin,
    "apply",
    "--server-side",
    "--force-conflicts",
    "--field-manager=nodeforge",
    "-f",
    m.manifest,
  ];

  it("flannel: downloads, checks, sets the pod network to podCIDR and applies it server-side", async () => {
    const double = cniManifestDouble("flannel", FLANNEL.version);
    const m = machine("flannel", double);
    const result = await m.apply();
    assert.deepEqual(result, { code: 0, stdout: "", stderr: "" });
    assert.deepEqual(m.kubectl(), [serverSideApply(m)]);

    // The applied manifest: the double with exactly one line changed, the pod network.
    const applied = m.kubectlFile();
    assert.equal(readFileSync(m.manifest, "utf8"), applied);
    const before = double.split("\n");
    const now = applied.split("\n");
    assert.equal(now.length, before.length);
    const changed = now.flatMap((line, i) => (line === before[i] ? [] : [i]));
    assert.equal(changed.length, 1, `changed lines: ${changed.join(", ")}`);
    assert.equal(before[changed[0] as number], '      "Network": "10.244.0.0/16",');
    assert.equal(now[changed[0] as number], `      "Network": "${POD_CIDR}",`);

    const objects = await assertManifestValid(applied, MANIFEST_KINDS.flannel);
    const config = objects.find((o) => o.kind === "ConfigMap") as { data: Record<string, string> };
    assert.equal((JSON.parse(config.data["net-conf.json"] as string) as { Network: string }).Network, POD_CIDR);
    assert.equal((JSON.parse(config.data["cni-conf.json"] as string) as { name: string }).name, "cbr0");

    // Only the adapted manifest is left (no download, no .edit), mode 0644.
    assert.deepEqual(readdirSync(m.dir), ["flannel.yaml"]);
    assert.equal(statSync(m.manifest).mode & 0o777, 0o644);

    // Again (a re-run after a trigger change): the same download, the same manifest, applied again.
    assert.equal((await m.apply()).code, 0);
    assert.equal(m.kubectl().length, 2);
    assert.equal(readFileSync(m.manifest, "utf8"), applied);
  });

  it("a tampered download: refused with both checksums, nothing applied, the applied manifest kept", async () => {
    const double = cniManifestDouble("flannel", FLANNEL.version);
    const good = createHash("sha256").update(double).digest("hex");
    const m = machine("flannel", double);
    assert.equal((await m.apply()).code, 0);
    const appliedBefore = readFileSync(m.manifest, "utf8");

    const tampered = double.replace("--ip-masq", "--ip-masq, --iface=evil0");
    const bad = createHash("sha256").update(tampered).digest("hex");
    served.set(m.path, tampered);
    const result = await m.apply();
    assert.notEqual(result.code, 0);
    assert.equal(result.stderr, `cp-1: cluster-network: sha256 mismatch for ${m.url}: expected ${good}, got ${bad}\n`);
    assert.match(
      result.stderr,
      /^cp-1: cluster-network: sha256 mismatch for http:\/\/127\.0\.0\.1:\d+\/\S+: expected [0-9a-f]{64}, got [0-9a-f]{64}\n$/,
    );
    assert.equal(m.kubectl().length, 1, "kubectl ran for the first, good, download only");
    assert.equal(readFileSync(m.manifest, "utf8"), appliedBefore);
    assert.deepEqual(readdirSync(m.dir), ["flannel.yaml"], "no download left behind");
  });

  it("a tampered first download: nothing applied, no manifest written", async () => {
    const m = machine("flannel", `${cniManifestDouble("flannel", FLANNEL.version)}# extra\n`, SHA);
    const result = await m.apply();
    assert.notEqual(result.code, 0);
    assert.match(
      result.stderr,
      new RegExp(`^cp-1: cluster-network: sha256 mismatch for ${m.url}: expected ${SHA}, got [0-9a-f]{64}\\n$`),
    );
    assert.deepEqual(m.kubectl(), []);
    assert.deepEqual(readdirSync(m.dir), []);
  });

  it("a manifest that checks out but has no default pod network line: refused before kubectl runs", async () => {
    const double = cniManifestDouble("flannel", FLANNEL.version);
    const moved = double.replace('"Network": "10.244.0.0/16"', '"Network": "10.99.0.0/16"');
    assert.notEqual(moved, double);
    const m = machine("flannel", moved);
    const result = await m.apply();
    assert.notEqual(result.code, 0);
    assert.equal(
      result.stderr,
      'cp-1: cluster-network: the manifest has 0 lines with "Network": "10.244.0.0/16" (expected one): cannot adapt it to the cluster\n',
    );
    assert.deepEqual(m.kubectl(), []);
    assert.deepEqual(readdirSync(m.dir), [], "neither the download nor a manifest is left");

    // Twice is as bad as none: which one would be the pod network?
    const twice = double.replace(
      '"Network": "10.244.0.0/16",',
      '"Network": "10.244.0.0/16",\n      "Network": "10.244.0.0/16",',
    );
    const m2 = machine("flannel", twice);
    const result2 = await m2.apply();
    assert.notEqual(result2.code, 0);
    assert.match(result2.stderr, /: the manifest has 2 lines with "Network": "10\.244\.0\.0\/16" \(expected one\)/);
    assert.deepEqual(m2.kubectl(), []);
  });

  it("a download that fails: curl's exit code, nothing applied", async () => {
    const m = machine("flannel", cniManifestDouble("flannel", FLANNEL.version));
    served.delete(m.path);
    const result = await m.apply();
    assert.notEqual(result.code, 0);
    assert.ok(
      result.stderr.endsWith(`cp-1: cluster-network: download of ${m.url} failed (curl exit 22)\n`),
      result.stderr,
    );
    assert.deepEqual(m.kubectl(), []);
  });

  it("calico: applied byte for byte as downloaded; every document, the CRD too, is schema-valid", async () => {
    const double = cniManifestDouble("calico", CALICO.version);
    const m = machine("calico", double);
    const result = await m.apply();
    assert.deepEqual(result, { code: 0, stdout: "", stderr: "" });
    assert.deepEqual(m.kubectl(), [serverSideApply(m)]);
    assert.equal(m.kubectlFile(), double);
    assert.equal(readFileSync(m.manifest, "utf8"), double);
    const objects = await assertManifestValid(double, MANIFEST_KINDS.calico);
    const env = JSON.stringify(objects.find((o) => o.kind === "DaemonSet"));
    assert.ok(!env.includes("CALICO_IPV4POOL_CIDR"), "the pool comes from kubeadm's podSubnet");
  });

  it("delete: deletes the manifest's objects, then the manifest and the empty cni dir; again, nothing to do", async () => {
    const m = machine("flannel", cniManifestDouble("flannel", FLANNEL.version));
    assert.equal((await m.apply()).code, 0);
    const applied = readFileSync(m.manifest, "utf8");
    const result = await m.remove();
    assert.deepEqual(result, { code: 0, stdout: "", stderr: "" });
    assert.deepEqual(m.kubectl()[1], [
      "--kubeconfig",
      m.admin,
      "delete",
      "--ignore-not-found",
      "--wait=false",
      "-f",
      m.manifest,
    ]);
    assert.equal(m.kubectlFile(), applied, "kubectl delete was given the applied manifest");
    assert.ok(!existsSync(m.manifest), "the manifest is gone");
    assert.ok(!existsSync(m.dir), "the cni dir is gone");
    assert.ok(existsSync(m.admin), "what is not the step's stays");

    // Destroy re-run, or the apply never got that far: success, and no kubectl call.
    assert.deepEqual(await m.remove(), { code: 0, stdout: "", stderr: "" });
    assert.equal(m.kubectl().length, 2);
  });

  it("the cni dir is kept when something else is in it", async () => {
    const m = machine("flannel", cniManifestDouble("flannel", FLANNEL.version));
    assert.equal((await m.apply()).code, 0);
    writeFileSync(join(m.dir, "operator-notes.txt"), "mine\n");
    assert.equal((await m.remove()).code, 0);
    assert.deepEqual(readdirSync(m.dir), ["operator-notes.txt"]);
  });

  it("values that reach the script are quoted: hostile ones run as data, never as commands", async () => {
    // Bypasses the schema (which refuses these) to show that quoting, not validation, keeps them inert.
    const root = mkdtempSync(join(TMP, "hostile-"));
    const fakes = join(root, "bin");
    mkdirSync(fakes);
    kubectlDouble(fakes);
    writeExecutable(join(fakes, "curl"), [
      "#!/bin/sh",
      'nf_out=""',
      'while [ $# -gt 1 ]; do if [ "$1" = -o ]; then nf_out=$2; fi; shift; done',
      'printf "%s" "$1" >"$NF_TEST_CURL_URL"',
      'cp "$NF_TEST_BODY" "$nf_out"',
    ]);
    const pwned = join(root, "pwned");
    const injection = `';touch "$NF_TEST_PWNED";'$(touch "$NF_TEST_PWNED")\`touch "$NF_TEST_PWNED"\`"; touch "$NF_TEST_PWNED"; "`;
    const body = cniManifestDouble("flannel", FLANNEL.version);
    writeFileSync(join(root, "body"), body);
    const cni: ResolvedCni = {
      plugin: "flannel",
      version: FLANNEL.version,
      manifestUrl: `http://mirror.internal/x y${injection}`,
      sha256: createHash("sha256").update(body).digest("hex"),
      manifestPath: "/etc/kubernetes/nodeforge/cni/flannel.yaml",
      edits: [{ from: '"Network": "10.244.0.0/16"', to: `"Network": "${injection}"` }],
    };
    const stack = parse(stackText());
    const hostileMachine = { ...(stack.machines[0] as MachineSpec), name: `cp-1${injection}` };
    const { script } = clusterNetworkScripts(cni, hostileMachine);
    assert.equal((await runProcess("dash", ["-n"], { input: script })).code, 0);
    const log = join(root, "kubectl.log");
    mkdirSync(join(root, "etc-kubernetes", "nodeforge"), { recursive: true });
    writeFileSync(join(root, "etc-kubernetes", "nodeforge", "kube-proxy.yaml"), "kube-proxy manifest test double\n");
    const result = await runLocally(root, script, {
      PATH: `${fakes}:${process.env.PATH ?? ""}`,
      NF_TEST_KUBECTL_LOG: log,
      NF_TEST_CURL_URL: join(root, "curl-url"),
      NF_TEST_BODY: join(root, "body"),
      NF_TEST_PWNED: pwned,
    });
    assert.deepEqual(result, { code: 0, stdout: "", stderr: "" });
    assert.ok(!existsSync(pwned), "no injected command ran");
    assert.equal(readFileSync(join(root, "curl-url"), "utf8"), cni.manifestUrl, "curl got the URL as one argument");
    const manifest = readFileSync(join(root, "etc-kubernetes", "nodeforge", "cni", "flannel.yaml"), "utf8");
    assert.ok(manifest.includes(`      "Network": "${injection}",\n`), "the edit wrote the value literally");
    assert.equal(calls(log).length, 2, "kube-proxy's apply, then the plugin's");
  });
});

/**
 * Runs a rendered script on this host as the remote command line would (/bin/sh -c), its absolute paths moved into
 * `root`: /etc/kubernetes -> root/etc-kubernetes, the state dir -> root/state, nodeforge's programs' directory (the
 * prelude puts it first in PATH) -> root/bin, an empty one. Fails when any other path under /etc,
 * /var, /opt, /run or /usr is left, so a script can never write outside the temp dir. The kubectl double comes first in
 * PATH; proxies are dropped, so curl reaches 127.0.0.1 directly.
 */
function runLocally(root: string, script: string, env: Record<string, string>): Promise<ProcessResult> {
  const local = script
    .replaceAll("/etc/kubernetes", join(root, "etc-kubernetes"))
    .replaceAll("/var/lib/nodeforge", join(root, "state"))
    .replaceAll("/usr/local/bin", join(root, "bin"));
  assert.deepEqual(local.replaceAll(root, "").match(/\/(etc|var|opt|run|usr)\/\S*/g), null, "paths left");
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/_proxy$/i.test(k)));
  return runProcess("/bin/sh", ["-c", local], {
    env: { ...inherited, PATH: `${join(TMP, "bin")}:${process.env.PATH ?? ""}`, ...env },
  });
}

describe("the CNI step under Pulumi's mocks (3 control planes + 1 worker)", () => {
  const SSH_SECRET = "SSH-PRIVATE-KEY-TEST-DOUBLE";
  const capture = (stack: StackSpec) =>
    captureProgram((transformations) => {
      new Cluster("c", { stack, secret: () => pulumi.secret(SSH_SECRET) }, { transformations });
    });
  const flannelText = (sha = SHA, podCIDR = POD_CIDR) =>
    stackText({
      cni: ["cni:", "  plugin: flannel", `  sha256: ${sha}`],
      cluster: [`podCIDR: ${podCIDR}`],
      controlPlanes: 3,
    });
  /** What re-runs the CNI step: its script (it has no files). */
  const scriptOf = async (resources: CapturedResource[]) =>
    outputValue(runOf(findResource(resources, "cp-1-cluster-network")).script as pulumi.Input<string>);
  const RESETS = ["cp-1-kubeadm-init", "cp-2-kubeadm-join", "cp-3-kubeadm-join", "worker-1-kubeadm-join"];

  let flannel: CapturedResource[];
  let none: CapturedResource[];
  before(async () => {
    flannel = await capture(parse(flannelText()));
    none = await capture(parse(stackText({ cluster: [`podCIDR: ${POD_CIDR}`], controlPlanes: 3 })));
  });

  it("one step for kube-proxy and the CNI plugin, on the first control plane, running the rendered scripts", async () => {
    const step = findResource(flannel, "cp-1-cluster-network");
    assert.equal(step.type, STEP_TYPE);
    assert.equal(step.parent, findResource(flannel, "cp-1").resource, "under the first control plane's Node");
    const target = await outputValue(step.props.target as pulumi.Input<Record<string, unknown>>);
    assert.equal(target.host, "192.0.2.10");
    assert.deepEqual(step.dependsOn, [findResource(flannel, "cp-3-certificate-renewal").resource]);

    const stack = parse(flannelText());
    const expected = clusterNetworkScripts(resolveCni(stack, DEFAULT_PINS), stack.machines[0] as MachineSpec);
    assert.equal(runOf(step).script, expected.script);
    assert.equal(runOf(step).deleteScript, expected.deleteScript);
    // kube-proxy first: the CNI plugin's pods need Service routing to reach the API server.
    const kubeProxy = expected.script.indexOf("-f /etc/kubernetes/nodeforge/kube-proxy.yaml\n");
    const cniDownload = expected.script.indexOf("\nnf_fetch http");
    assert.ok(kubeProxy > 0 && kubeProxy < cniDownload, "kube-proxy, then the CNI plugin");
    assert.deepEqual(Object.keys(await stepFiles(step)), ["/etc/kubernetes/nodeforge/kube-proxy.yaml"]);
    assert.deepEqual(runOf(step).triggers, []);
  });

  it("no secret in the cluster-network step's scripts", () => {
    const step = findResource(flannel, "cp-1-cluster-network");
    const text = `${String(runOf(step).script)}\n${String(runOf(step).deleteScript)}`;
    for (const secret of [SSH_SECRET, "PRIVATE KEY", ...Object.values(FAKE_CLUSTER_PKI)]) {
      assert.ok(!text.includes(secret), `no ${secret}`);
    }
    assert.ok(text.includes(SHA), "test setup: the scripts were looked at");
  });

  it("with plugin none, kube-proxy alone: nothing downloaded, no CNI manifest", () => {
    const step = findResource(none, "cp-1-cluster-network");
    for (const script of [String(runOf(step).script), String(runOf(step).deleteScript)]) {
      assert.match(script, /kube-proxy\.yaml/);
      assert.doesNotMatch(script, /nf_fetch|\/cni\//);
    }
    assertCleanShell("cluster-network without a CNI plugin", String(runOf(step).script));
    assertCleanShell("cluster-network delete without a CNI plugin", String(runOf(step).deleteScript));
  });

  it("the script, what re-runs the step, changes with the sha256 and the podCIDR, and not otherwise", async () => {
    const base = await scriptOf(flannel);
    assert.deepEqual(await scriptOf(await capture(parse(flannelText()))), base);
    assert.notDeepEqual(await scriptOf(await capture(parse(flannelText(OTHER_SHA)))), base);
    assert.notDeepEqual(await scriptOf(await capture(parse(flannelText(SHA, "10.33.0.0/16")))), base);
  });

  /** A step's script as its MachineStep carries it. */
  function unwrap(script: unknown): string {
    assert.equal(typeof script, "string");
    return script as string;
  }

  it("every machine's kubeadm reset removes flannel's files and links after kubeadm reset", () => {
    const leftovers = cniLeftovers(parse(flannelText()));
    assert.ok(leftovers.paths.includes("/etc/cni/net.d/10-flannel.conflist"));
    assert.deepEqual(leftovers.links, ["flannel.1", "cni0"]);
    for (const name of RESETS) {
      const reset = unwrap(runOf(findResource(flannel, name)).deleteScript);
      assertCleanShell(`${name} reset`, reset);
      const rm = reset.indexOf(`\nrm -rf ${leftovers.paths.join(" ")} \n`);
      assert.ok(rm > 0, `${name}: removes ${leftovers.paths.join(" ")}`);
      assert.ok(reset.indexOf("kubeadm reset --force") < rm, `${name}: after kubeadm reset`);
      assert.ok(reset.includes("/etc/cni/net.d/10-flannel.conflist "), name);
      for (const link of leftovers.links) {
        assert.ok(
          reset.includes(`  if ip link show ${link} >/dev/null 2>&1; then ip link delete ${link} || true; fi\n`),
          `${name}: deletes ${link}`,
        );
      }
    }
  });

  it("with plugin none no reset touches CNI files or links", () => {
    for (const name of RESETS) {
      const reset = unwrap(runOf(findResource(none, name)).deleteScript);
      assert.match(reset, /kubeadm reset --force/, name);
      for (const word of ["/etc/cni", "/opt/cni", "/var/lib/cni", "flannel", "calico", "ip link"]) {
        assert.ok(!reset.includes(word), `${name}: no ${word}`);
      }
    }
  });
});
