/**
 * The CNI plugin (stack `cni`): how a stack selects it and what validation refuses; the apply and delete scripts,
 * checked by shellcheck and dash and RUN on this host against a local HTTP server and a recording kubectl (download,
 * sha256 refusal, flannel adapted to the pod CIDR and valid against the Kubernetes schemas); and, under Pulumi's
 * mocks, its place after kube-proxy and the node leftovers each reset removes.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { parseAllDocuments } from "yaml";
import { cniLeftovers, resolveCni } from "../../modules/cluster-config";
import { Cluster } from "../../modules/components";
import { cniScripts } from "../../modules/components/bootstrap";
import { DEFAULT_PINS, type CniPlugin, type Pins } from "../../modules/pins";
import { parseStack, StackValidationError, type StackSpec } from "../../modules/stack";
import { cniManifestDouble } from "../harness/cni-doubles";
import { kubernetesSchemaErrors } from "../harness/k8s-validate";
import { captureProgram, findResource, type CapturedResource } from "../harness/pulumi-mocks";
import { TEST_HOST_KEY } from "../harness/stack-builder";
import { serveTexts, type TextServer } from "../harness/text-server";

const SHA = "c".repeat(64);
const FLANNEL = DEFAULT_PINS.cni.flannel;

/** A stack with one control plane and one worker; `top` lines go at the top level, `cluster` into cluster:. */
function stackYaml(top: string[], cluster: string[] = []): string {
  return [
    "cluster:",
    "  name: lab",
    '  kubernetesVersion: "1.34.4"',
    ...cluster.map((l) => `  ${l}`),
    ...top,
    "machines:",
    "  - name: cp-1",
    "    address: 192.0.2.10",
    "    role: control-plane",
    "    os: debian-12",
    `    hostKey: ${TEST_HOST_KEY}`,
    "  - name: worker-1",
    "    address: 192.0.2.21",
    "    role: worker",
    "    os: debian-12",
    `    hostKey: ${TEST_HOST_KEY}`,
    "",
  ].join("\n");
}

function parse(top: string[], cluster: string[] = [], pins: Pins = DEFAULT_PINS): StackSpec {
  return parseStack(stackYaml(top, cluster), "lab.yaml", pins);
}

/** The `path: message` lines of the issues parsing reports (positions included, as a user sees them). */
function issues(top: string[], cluster: string[] = []): string[] {
  try {
    parse(top, cluster);
  } catch (error) {
    assert.ok(error instanceof StackValidationError, String(error));
    return error.issues.map((i) => `${i.line ?? "?"}:${i.column ?? "?"}: ${i.path}: ${i.message}`);
  }
  return [];
}

/** DEFAULT_PINS with a checksum for each plugin, as once a maintainer records them. */
function pinnedPins(): Pins {
  const pins = structuredClone(DEFAULT_PINS);
  for (const plugin of Object.keys(pins.cni) as CniPlugin[]) pins.cni[plugin].sha256 = SHA;
  return pins;
}

describe("stack cni", () => {
  it("defaults to none; a plugin name is short for { plugin }", () => {
    assert.deepEqual(parse([]).cni, { plugin: "none" });
    const short = parse(["cni: flannel"], [], pinnedPins()).cni;
    const long = parse(["cni:", "  plugin: flannel"], [], pinnedPins()).cni;
    assert.deepEqual(short, { plugin: "flannel" });
    assert.deepEqual(long, short);
  });

  it("keeps a mirror URL and a checksum", () => {
    const url = "http://mirror.internal/cni/kube-flannel.yml";
    assert.deepEqual(parse(["cni:", "  plugin: flannel", `  manifestUrl: ${url}`, `  sha256: "${SHA}"`]).cni, {
      plugin: "flannel",
      manifestUrl: url,
      sha256: SHA,
    });
  });

  it("refuses an unknown plugin with one message listing the allowed ones", () => {
    assert.deepEqual(issues(["cni: weave"]), [
      '4:6: cni: "weave" is not allowed; must be one of: flannel, calico, none',
    ]);
    assert.deepEqual(issues(["cni:", "  plugin: weave"]), [
      '5:11: cni.plugin: "weave" is not allowed; must be one of: flannel, calico, none',
    ]);
  });

  it("refuses a value of the wrong type, an unknown key, a bad URL and a bad checksum, each where it is", () => {
    assert.deepEqual(issues(["cni: 5"]), [
      "4:6: cni: 5 must be a plugin name (flannel, calico or none) or an object with plugin, manifestUrl and sha256",
    ]);
    assert.deepEqual(issues(["cni:", "  plugin: flannel", `  sha256: "${SHA}"`, "  version: v1"]), [
      "7:12: cni.version: unknown property; allowed here: plugin, manifestUrl, sha256",
    ]);
    assert.deepEqual(issues(["cni:", "  plugin: flannel", `  sha256: "${SHA}"`, "  manifestUrl: ftp://x/y"]), [
      '7:16: cni.manifestUrl: "ftp://x/y" must be an http(s) URL without spaces, quotes or shell characters',
    ]);
    assert.deepEqual(issues(["cni:", "  plugin: flannel", `  sha256: "${SHA.toUpperCase()}"`]), [
      `6:11: cni.sha256: "${"C".repeat(56)}... must be a sha256: 64 lowercase hex digits`,
    ]);
  });

  it("asks for cni.sha256 while nodeforge pins none, naming plugin, version, URL and the command", () => {
    assert.deepEqual(DEFAULT_PINS.cni.flannel.sha256, undefined, "test setup: flannel has no pinned checksum");
    assert.deepEqual(issues(["cni: flannel"]), [
      `4:6: cni.sha256: is required: nodeforge has no verified sha256 for flannel ${FLANNEL.version} ` +
        `(${FLANNEL.manifestUrl}); run \`nodeforge cni-pin lab.yaml\` where that URL is reachable, review the ` +
        "manifest and add the sha256 it prints",
    ]);
    const mirror = "http://mirror.internal/calico.yaml";
    assert.match(
      issues(["cni:", "  plugin: calico", `  manifestUrl: ${mirror}`])[0] ?? "",
      /calico v3\.\d+\.\d+ \(http:\/\/mirror\.internal\/calico\.yaml\)/,
    );
    // With a pinned checksum the same stacks are valid.
    assert.equal(parse(["cni: flannel"], [], pinnedPins()).cni.plugin, "flannel");
  });

  it("refuses a mirror URL or a checksum with plugin none", () => {
    assert.deepEqual(issues(["cni:", "  plugin: none", `  sha256: "${SHA}"`, "  manifestUrl: http://m/x.yml"]), [
      "7:16: cni.manifestUrl: has no use with plugin none",
      `6:11: cni.sha256: has no use with plugin none`,
    ]);
  });

  it("refuses an IPv6 pod network for flannel and calico, not for none", () => {
    for (const plugin of ["flannel", "calico"]) {
      assert.deepEqual(
        issues([`cni: ${plugin}`].concat([]), ["podCIDR: fd00:10:244::/56", "serviceCIDR: fd00:10:96::/112"]).filter(
          (i) => !i.includes("cni.sha256"),
        ),
        [
          `4:12: cluster.podCIDR: is IPv6: nodeforge sets up ${plugin} for an IPv4 pod network only; use cni: none ` +
            "and install it yourself",
        ],
      );
    }
    assert.deepEqual(issues([], ["podCIDR: fd00:10:244::/56", "serviceCIDR: fd00:10:96::/112"]), []);
  });
});

describe("resolveCni", () => {
  it("is undefined for none", () => {
    assert.equal(resolveCni(parse([]), DEFAULT_PINS), undefined);
  });

  it("takes the stack's mirror URL and checksum over the pin's, and adapts flannel to the pod CIDR", () => {
    const url = "http://mirror.internal/kube-flannel.yml";
    const stack = parse(
      ["cni:", "  plugin: flannel", `  manifestUrl: ${url}`, `  sha256: "${SHA}"`],
      ["podCIDR: 10.32.0.0/16"],
    );
    assert.deepEqual(resolveCni(stack, DEFAULT_PINS), {
      plugin: "flannel",
      version: FLANNEL.version,
      manifestUrl: url,
      sha256: SHA,
      manifestPath: "/etc/kubernetes/nodeforge/cni/flannel.yaml",
      edits: [{ from: '"Network": "10.244.0.0/16"', to: '"Network": "10.32.0.0/16"' }],
    });
  });

  it("uses the pinned URL and checksum when the stack names none; calico needs no edit", () => {
    const pins = pinnedPins();
    const cni = resolveCni(parse(["cni: calico"], [], pins), pins);
    assert.equal(cni?.manifestUrl, DEFAULT_PINS.cni.calico.manifestUrl);
    assert.equal(cni?.sha256, SHA);
    assert.deepEqual(cni?.edits, []);
  });
});

/** shellcheck (POSIX sh, style level) and dash's parser accept the script; both must be installed. */
function assertCleanShell(name: string, script: string): void {
  const check = spawnSync("shellcheck", ["-s", "sh", "-S", "style", "-"], { input: script, encoding: "utf8" });
  assert.equal(check.error, undefined, `shellcheck must be installed (.ci/install-packages): ${String(check.error)}`);
  assert.equal(check.status, 0, `${name}: ${check.stdout}`);
  assert.equal(spawnSync("dash", ["-n"], { input: script }).status, 0, `${name}: dash -n`);
}

describe("CNI scripts", () => {
  const pinned = pinnedPins();
  for (const plugin of ["flannel", "calico"] as const) {
    it(`${plugin}: apply and delete scripts pass shellcheck and dash -n`, () => {
      const stack = parse([`cni: ${plugin}`], [], pinned);
      const cni = { ...resolveCni(stack, pinned)!, manifestUrl: "http://mirror.internal/cni/a%20b.yml" };
      const { script, deleteScript } = cniScripts(cni, stack.machines[0]!);
      assertCleanShell(`${plugin} apply`, script);
      assertCleanShell(`${plugin} delete`, deleteScript);
    });

    it(`${plugin}: a URL reaches the shell single-quoted, as data`, () => {
      const stack = parse([`cni: ${plugin}`], [], pinned);
      const url = "http://mirror.internal/$(touch${IFS}x)'`id`";
      const { script } = cniScripts({ ...resolveCni(stack, pinned)!, manifestUrl: url }, stack.machines[0]!);
      const line = script.split("\n").find((l) => l.startsWith("nf_fetch "));
      // What the shell makes of the line's first argument is the URL itself, nothing run.
      const words = spawnSync("sh", ["-c", `set -- ${line?.slice("nf_fetch ".length) ?? ""}; printf %s "$1"`], {
        encoding: "utf8",
      });
      assert.equal(words.stdout, url);
    });
  }
});

/**
 * Runs the rendered scripts on this host: every absolute path under /etc/kubernetes moved into a temp dir, a kubectl
 * first in PATH that records its arguments and a copy of the file it applies, the manifest from a local server.
 */
describe("the CNI apply and delete scripts, run for real", () => {
  const work = mkdtempSync(join(tmpdir(), "nodeforge-cni-run-"));
  const bin = join(work, "bin");
  const served = new Map<string, string>();
  let server: TextServer;
  let base = "";
  before(async () => {
    mkdirSync(bin);
    writeFileSync(
      join(bin, "kubectl"),
      [
        "#!/bin/sh",
        "# records its arguments, and the file after -f, for the test",
        'printf "%s\\n" "$*" >>"$KUBECTL_LOG"',
        'while [ $# -gt 0 ]; do if [ "$1" = -f ]; then cp "$2" "$KUBECTL_LOG.applied"; fi; shift; done',
        "",
      ].join("\n"),
    );
    chmodSync(join(bin, "kubectl"), 0o755);
    server = await serveTexts(served);
    base = server.base;
  });
  after(async () => {
    await server.close();
    rmSync(work, { recursive: true, force: true });
  });

  let runs = 0;
  /** Serves `content`, renders the scripts for it (podCIDR 10.32.0.0/16), and returns a runner for them. */
  function setUp(plugin: CniPlugin, content: string, sha256 = createHash("sha256").update(content).digest("hex")) {
    const root = join(work, `run-${++runs}`);
    mkdirSync(root);
    writeFileSync(join(root, "admin.conf"), "test admin.conf\n");
    served.set(`/${runs}/manifest.yml`, content);
    const stack = parse(
      ["cni:", `  plugin: ${plugin}`, `  manifestUrl: ${base}/${runs}/manifest.yml`, `  sha256: "${sha256}"`],
      ["podCIDR: 10.32.0.0/16"],
    );
    const cni = resolveCni(stack, DEFAULT_PINS)!;
    const scripts = cniScripts(cni, stack.machines[0]!);
    const log = join(root, "kubectl.log");
    const run = (script: string) => {
      const local = script
        .replaceAll("/etc/kubernetes/admin.conf", join(root, "admin.conf"))
        .replaceAll("/etc/kubernetes", join(root, "etc-kubernetes"))
        .replaceAll("/var/lib/nodeforge", join(root, "state"));
      // Asynchronous: the server that curl downloads from runs in this process.
      return new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const child = spawn("sh", ["-c", local], {
          env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}`, KUBECTL_LOG: log },
          stdio: ["ignore", "ignore", "pipe"],
        });
        let stderr = "";
        child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
        child.on("close", (status) => resolve({ status, stderr }));
      });
    };
    return {
      apply: () => run(scripts.script),
      remove: () => run(scripts.deleteScript),
      kubectlCalls: () => (existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : []),
      applied: () => readFileSync(`${log}.applied`, "utf8"),
      manifest: join(root, "etc-kubernetes", "nodeforge", "cni", `${plugin}.yaml`),
      dir: join(root, "etc-kubernetes", "nodeforge", "cni"),
      admin: join(root, "admin.conf"),
      root,
    };
  }

  async function schemaErrors(text: string): Promise<string[]> {
    const errors: string[] = [];
    for (const doc of parseAllDocuments(text)) {
      assert.deepEqual(doc.errors, []);
      const object: unknown = doc.toJS();
      if (object) errors.push(...(await kubernetesSchemaErrors(object)));
    }
    return errors;
  }

  it("flannel: downloads, checks, sets the pod network and applies it server-side", async () => {
    const double = cniManifestDouble("flannel", FLANNEL.version);
    const run = setUp("flannel", double);
    const result = await run.apply();
    assert.equal(result.status, 0, result.stderr);
    const expected = double.replace('"Network": "10.244.0.0/16"', '"Network": "10.32.0.0/16"');
    assert.notEqual(expected, double);
    assert.equal(readFileSync(run.manifest, "utf8"), expected);
    assert.deepEqual(run.kubectlCalls(), [
      `--kubeconfig ${run.admin} apply --server-side --force-conflicts --field-manager=nodeforge -f ${run.manifest}`,
    ]);
    assert.equal(run.applied(), expected);
    assert.deepEqual(await schemaErrors(expected), []);
    const config = parseAllDocuments(expected)
      .map((d) => d.toJS() as { kind?: string; data?: Record<string, string> })
      .find((o) => o.kind === "ConfigMap");
    assert.equal((JSON.parse(config?.data?.["net-conf.json"] ?? "{}") as { Network?: string }).Network, "10.32.0.0/16");
    assert.ok(!existsSync(`${run.manifest}.nodeforge-download`));
  });

  it("flannel: a tampered download is refused, nothing is applied and the applied manifest stays", async () => {
    const double = cniManifestDouble("flannel", FLANNEL.version);
    const run = setUp("flannel", double);
    assert.equal((await run.apply()).status, 0);
    const before = readFileSync(run.manifest, "utf8");
    served.set(`/${runs}/manifest.yml`, `${double}# tampered\n`);
    const result = await run.apply();
    assert.notEqual(result.status, 0);
    assert.match(
      result.stderr,
      /^cp-1: cni: sha256 mismatch for http:\/\/127\.0\.0\.1:\d+\/\d+\/manifest\.yml: expected [0-9a-f]{64}, got [0-9a-f]{64}\n$/,
    );
    assert.equal(run.kubectlCalls().length, 1, "kubectl ran only for the first, good, apply");
    assert.equal(readFileSync(run.manifest, "utf8"), before);
    assert.ok(!existsSync(`${run.manifest}.nodeforge-download`));
  });

  it("flannel: a manifest without exactly one pod network line is refused before kubectl runs", async () => {
    const odd = cniManifestDouble("flannel", FLANNEL.version).replace('      "Network": "10.244.0.0/16",\n', "");
    const run = setUp("flannel", odd);
    const result = await run.apply();
    assert.notEqual(result.status, 0);
    assert.equal(
      result.stderr,
      `cp-1: cni: the manifest has 0 lines with "Network": "10.244.0.0/16" (expected one): cannot adapt it to the cluster\n`,
    );
    assert.deepEqual(run.kubectlCalls(), []);
    assert.ok(!existsSync(run.manifest) && !existsSync(`${run.manifest}.nodeforge-download`));
  });

  it("calico: applies the download byte for byte; every document, its CRD too, is schema-valid", async () => {
    const double = cniManifestDouble("calico", DEFAULT_PINS.cni.calico.version);
    const run = setUp("calico", double);
    const result = await run.apply();
    assert.equal(result.status, 0, result.stderr);
    assert.equal(run.applied(), double);
    assert.deepEqual(await schemaErrors(double), []);
  });

  it("delete: deletes what the manifest created, then the manifest and the directory", async () => {
    const run = setUp("flannel", cniManifestDouble("flannel", FLANNEL.version));
    assert.equal((await run.apply()).status, 0);
    const result = await run.remove();
    assert.equal(result.status, 0, result.stderr);
    assert.equal(
      run.kubectlCalls()[1],
      `--kubeconfig ${run.admin} delete --ignore-not-found --wait=false -f ${run.manifest}`,
    );
    assert.ok(!existsSync(run.dir), "the cni directory is gone");
    // Again (state lost, or destroy re-run): nothing left to delete, no kubectl call, success.
    assert.equal((await run.remove()).status, 0);
    assert.equal(run.kubectlCalls().length, 2);
  });
});

describe("the CNI step under mocks", () => {
  const capture = async (stack: StackSpec) =>
    captureProgram((transformations) => {
      new Cluster("c", { stack, secret: () => pulumi.secret("KEY") }, { transformations });
    });
  const flannelStack = (cluster: string[] = [], sha = SHA) =>
    parse(["cni:", "  plugin: flannel", `  sha256: "${sha}"`], cluster);
  let resources: CapturedResource[];
  before(async () => {
    resources = await capture(flannelStack());
  });

  it("runs once, on the first control plane, after kube-proxy", () => {
    const cni = resources.filter((r) => r.name.endsWith("-cni"));
    assert.deepEqual(
      cni.map((r) => r.name),
      ["cp-1-cni"],
    );
    assert.ok(cni[0]!.dependsOn.includes(findResource(resources, "cp-1-kube-proxy").resource));
    const create = String(cni[0]!.props.create);
    assert.ok(create.includes(`nf_fetch ${FLANNEL.manifestUrl} ${SHA} `));
    assert.ok(!/KEY|BEGIN .*PRIVATE/.test(create + String(cni[0]!.props.delete)), "no secret in the scripts");
  });

  it("is absent with plugin none", async () => {
    assert.deepEqual(
      (await capture(parse([]))).filter((r) => r.name.endsWith("-cni")),
      [],
    );
  });

  it("is triggered again by a new checksum or pod CIDR, not by an unchanged stack", async () => {
    const trigger = (rs: CapturedResource[]) => JSON.stringify(findResource(rs, "cp-1-cni").props.triggers);
    assert.equal(trigger(await capture(flannelStack())), trigger(resources));
    assert.notEqual(trigger(await capture(flannelStack([], "d".repeat(64)))), trigger(resources));
    assert.notEqual(trigger(await capture(flannelStack(["podCIDR: 10.32.0.0/16"]))), trigger(resources));
  });

  it("makes every machine's kubeadm reset remove flannel's leftovers; none leaves CNI files alone", async () => {
    const leftovers = cniLeftovers(flannelStack());
    for (const name of ["cp-1-kubeadm-init", "worker-1-kubeadm-join"]) {
      const reset = String(findResource(resources, name).props.delete);
      for (const path of leftovers.paths) assert.ok(reset.includes(`${path} `), `${name} removes ${path}`);
      assert.match(reset, /ip link delete flannel\.1 /);
      assert.ok(reset.includes("/etc/cni/net.d/10-flannel.conflist"));
    }
    const none = await capture(parse([]));
    for (const name of ["cp-1-kubeadm-init", "worker-1-kubeadm-join"]) {
      const reset = String(findResource(none, name).props.delete);
      assert.ok(!reset.includes("/etc/cni") && !reset.includes("ip link"), `${name}: no CNI cleanup`);
    }
  });
});
