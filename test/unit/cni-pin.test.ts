/**
 * `nodeforge cni-pin`, run as a user runs it (the built CLI, a child process) against a local HTTP server serving
 * the flannel test-double manifest: the checksum it prints is the one the stack then validates with, and a
 * mismatch, a failed download or a manifest nodeforge cannot adapt are errors.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DEFAULT_PINS } from "../../modules/pins";
import { projectRoot } from "../../modules/project-root";
import { loadStackFile, StackValidationError } from "../../modules/stack";
import { cniManifestDouble } from "../harness/cni-doubles";
import { serveTexts, type TextServer } from "../harness/text-server";

const cli = join(projectRoot(), "build", "modules", "cli", "main.js");
const work = mkdtempSync(join(tmpdir(), "nodeforge-cni-pin-"));
const version = DEFAULT_PINS.cni.flannel.version;
const manifest = cniManifestDouble("flannel", version);
const manifestSha256 = createHash("sha256").update(manifest).digest("hex");
/** The double without its net-conf.json pod network line: nodeforge could not adapt it. */
const unadaptable = manifest.replace('"Network": "10.244.0.0/16",\n', "");

let server: TextServer;
let base = "";
before(async () => {
  server = await serveTexts(
    new Map([
      ["/kube-flannel.yml", manifest],
      ["/odd.yml", unadaptable],
    ]),
  );
  base = server.base;
});
after(async () => {
  await server.close();
  rmSync(work, { recursive: true, force: true });
});

function nodeforge(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { encoding: "utf8" }, (error, stdout, stderr) => {
      resolve({ status: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

let stacks = 0;
/** A stack file with the given `cni:` lines (and a machine without a host key, as before `nodeforge hostkeys`). */
function stackFile(cniLines: string[]): string {
  const file = join(work, `stack-${++stacks}.yaml`);
  const text = [
    "cluster:",
    "  name: lab",
    '  kubernetesVersion: "1.36.4"',
    "  podCIDR: 10.32.0.0/16",
    ...cniLines,
    "machines:",
    "  - name: cp-1",
    "    address: 192.0.2.10",
    "    role: control-plane",
    "    os: debian-12",
    "",
  ].join("\n");
  writeFileSync(file, text);
  return file;
}

describe("nodeforge cni-pin", () => {
  it("downloads the manifest and prints its size, sha256, images and the cni.sha256 to add", async () => {
    const file = stackFile(["cni:", "  plugin: flannel", `  manifestUrl: ${base}/kube-flannel.yml`]);
    const saved = join(work, "saved.yml");
    const run = await nodeforge("cni-pin", file, "--out", saved);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stderr, "");
    assert.equal(
      run.stdout,
      [
        `flannel ${version}: ${base}/kube-flannel.yml`,
        `  ${Buffer.byteLength(manifest)} bytes, sha256 ${manifestSha256}, saved to ${saved}`,
        "  images it runs:",
        `    nodeforge.invalid/test-double/flannel:${version}`,
        `Review the manifest, then add to ${file}:`,
        "cni:",
        "  plugin: flannel",
        `  sha256: "${manifestSha256}"`,
        "",
      ].join("\n"),
    );
    assert.equal(readFileSync(saved, "utf8"), manifest);
  });

  it("prints the checksum that makes the stack valid, and then confirms it", async () => {
    const lines = ["cni:", "  plugin: flannel", `  manifestUrl: ${base}/kube-flannel.yml`];
    assert.throws(
      () => loadStackFile(stackFile(lines), DEFAULT_PINS, { requireHostKeys: false }),
      (error) => {
        assert.ok(error instanceof StackValidationError);
        assert.match(error.message, /cni\.sha256: is required: nodeforge has no verified sha256 for flannel/);
        return true;
      },
    );
    const printed = /sha256: "([0-9a-f]{64})"\n$/.exec((await nodeforge("cni-pin", stackFile(lines))).stdout)?.[1];
    assert.equal(printed, manifestSha256);
    const pinned = stackFile([...lines, `  sha256: "${printed}"`]);
    assert.equal(loadStackFile(pinned, DEFAULT_PINS, { requireHostKeys: false }).cni.sha256, manifestSha256);
    const check = await nodeforge("cni-pin", pinned);
    assert.equal(check.status, 0, check.stderr);
    assert.match(check.stdout, /\n {2}matches cni\.sha256 in the stack\n$/);
  });

  it("exits 1 when the download does not match the stack's sha256", async () => {
    const wrong = "f".repeat(64);
    const file = stackFile([
      "cni:",
      "  plugin: flannel",
      `  manifestUrl: ${base}/kube-flannel.yml`,
      `  sha256: ${wrong}`,
    ]);
    const run = await nodeforge("cni-pin", file);
    assert.equal(run.status, 1);
    assert.equal(
      run.stderr,
      `${file}: cni: MISMATCH: cni.sha256 in the stack is ${wrong}, the download's is ${manifestSha256}\n`,
    );
  });

  it("exits 1 naming the URL when the download fails", async () => {
    const missing = stackFile(["cni:", "  plugin: flannel", `  manifestUrl: ${base}/nothing.yml`]);
    const notFound = await nodeforge("cni-pin", missing);
    assert.equal(notFound.status, 1);
    assert.equal(notFound.stderr, `${missing}: cni: cannot download ${base}/nothing.yml: HTTP 404 Not Found\n`);

    // A port nothing listens on: one the system just gave out and took back.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const closedUrl = `http://127.0.0.1:${port}/kube-flannel.yml`;
    const closed = stackFile(["cni:", "  plugin: flannel", `  manifestUrl: ${closedUrl}`]);
    const refused = await nodeforge("cni-pin", closed, "--timeout", "5");
    assert.equal(refused.status, 1);
    assert.equal(
      refused.stderr,
      `${closed}: cni: cannot download ${closedUrl}: fetch failed (connect ECONNREFUSED 127.0.0.1:${port})\n`,
    );
  });

  it("exits 1 when the manifest has no pod network line to adapt, before any checksum is written down", async () => {
    const file = stackFile(["cni:", "  plugin: flannel", `  manifestUrl: ${base}/odd.yml`]);
    const run = await nodeforge("cni-pin", file);
    assert.equal(run.status, 1);
    assert.match(
      run.stderr,
      /cni: the manifest does not have exactly one "\\"Network\\": \\"10\.244\.0\.0\/16\\"": nodeforge cannot adapt it\n$/,
    );
  });

  it("exits 2 for plugin none and for a stack that is invalid for other reasons", async () => {
    const none = stackFile([]);
    const run = await nodeforge("cni-pin", none);
    assert.equal(run.status, 2);
    assert.equal(run.stderr, `${none}: cni.plugin: is none: there is no manifest to pin\n`);

    const bad = stackFile(["cni:", "  plugin: weave"]);
    const invalid = await nodeforge("cni-pin", bad);
    assert.equal(invalid.status, 2);
    assert.match(
      invalid.stderr,
      /stack-\d+\.yaml:6:11: cni\.plugin: "weave" is not allowed; must be one of: flannel, calico, none/,
    );
  });

  it("refuses a malformed --timeout with the usage text", async () => {
    const run = await nodeforge("cni-pin", stackFile([]), "--timeout", "soon");
    assert.equal(run.status, 64);
    assert.match(run.stderr, /nodeforge cni-pin FILE/);
  });
});
