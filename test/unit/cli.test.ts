/** The nodeforge command as a user runs it: exit codes, messages, rendered output. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { projectRoot } from "../../modules/project-root";

const cli = join(projectRoot(), "build", "modules", "cli", "main.js");
const example = join(projectRoot(), "stacks", "example-baremetal.yaml");
const work = mkdtempSync(join(tmpdir(), "nodeforge-cli-"));
after(() => rmSync(work, { recursive: true, force: true }));

function nodeforge(...args: string[]) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });
}

describe("nodeforge validate", () => {
  it("exits 0 on a valid file and says what it found", () => {
    const run = nodeforge("validate", example);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /example-baremetal\.yaml: valid \(3 machine\(s\), Kubernetes 1\.36\.4\)/);
  });

  it("exits 2 and lists every problem as file:line:col: path: message", () => {
    const bad = join(work, "bad.yaml");
    writeFileSync(
      bad,
      readFileSync(example, "utf8").replace("port: 2222", "port: 70000").replace("role: worker\n", "role: boss\n"),
    );
    const run = nodeforge("validate", bad);
    assert.equal(run.status, 2);
    const lines = run.stderr.trim().split("\n");
    assert.deepEqual(lines, [
      `${bad}:35:11: machines[1].role: "boss" is not allowed; must be one of: control-plane, worker, control-plane+worker`,
      `${bad}:46:18: machines[2].ssh.port: 70000 must be <= 65535`,
      `${bad}: 2 problem(s)`,
    ]);
  });

  it("exits 64 with usage on bad arguments", () => {
    const run = nodeforge("validate");
    assert.equal(run.status, 64);
    assert.match(run.stderr, /usage:/);
  });
});

describe("nodeforge render", () => {
  it("writes every file and script for the machine, with a manifest of modes and owners", () => {
    const out = join(work, "render");
    const run = nodeforge("render", example, "--machine", "worker-2", "--out", out);
    assert.equal(run.status, 0, run.stderr);
    const manifest = readFileSync(join(out, "MANIFEST"), "utf8");
    assert.match(manifest, /^step 01-preflight: /m);
    assert.match(manifest, /^ {2}file \/etc\/systemd\/system\/containerd\.service mode 0644 owner root:root$/m);
    assert.match(readFileSync(join(out, "files", "etc", "containerd", "config.toml"), "utf8"), /SystemdCgroup = true/);
    assert.match(readFileSync(join(out, "steps", "02-install-containerd.sh"), "utf8"), /dnf -q -y install/);
    assert.equal(statSync(join(out, "steps", "04-configure-kubelet.delete.sh")).mode & 0o777, 0o755);
  });

  it("names the machines there are when asked for one that is not in the file", () => {
    const run = nodeforge("render", example, "--machine", "nope", "--out", join(work, "none"));
    assert.equal(run.status, 2);
    assert.match(run.stderr, /no machine named 'nope'; machines: cp-1, worker-1, worker-2/);
  });
});
