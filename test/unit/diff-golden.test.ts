/**
 * `nodeforge diff OLD NEW` against golden files: each case under test/fixtures/diff/<case> holds old.yaml and new.yaml
 * (edited copies of stacks/example-baremetal.yaml) and what the command must print: expected-stdout.txt,
 * expected-stderr.txt and expected-status.txt (its exit code).
 *
 * To regenerate the golden files after a change to the plan or the report, build and run this file with
 * UPDATE_GOLDEN=1, then read what changed in them before committing:
 *
 *     npx tsc -p tsconfig.json && UPDATE_GOLDEN=1 node --test build/test/unit/diff-golden.test.js
 *
 * The output must not depend on the throwaway secrets the command generates (secrets are masked, certificates named,
 * never shown): the goldens run with one set, and another test checks that no secret value is ever printed.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { diffCommand } from "../../modules/cli/diff";
import { maskedValues } from "../../modules/cli/mask-secrets";
import { pairSecrets } from "../../modules/cli/pair-secrets";
import { diffPlans } from "../../modules/cli/plan-diff";
import { formatPlanDiff } from "../../modules/cli/format-diff";
import type { ClusterSecrets, PlannedStep } from "../../modules/plan";
import { projectRoot } from "../../modules/project-root";
import { loadStackFile } from "../../modules/stack";

const root = projectRoot();
const fixtures = join(root, "test", "fixtures", "diff");
const cli = join(root, "build", "modules", "cli", "main.js");
const update = process.env["UPDATE_GOLDEN"] === "1";
const work = mkdtempSync(join(tmpdir(), "nodeforge-diff-"));
after(() => rmSync(work, { recursive: true, force: true }));

function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { stream, text: () => chunks.join("") };
}

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** The command in this process, with the given secrets; paths under the repository shown relative to it. */
function diff(oldFile: string, newFile: string, secrets: ClusterSecrets): Run {
  const [out, err] = [sink(), sink()];
  const status = diffCommand(oldFile, newFile, out.stream, err.stream, { secrets });
  const relative = (text: string) => text.split(`${root}/`).join("");
  return { status, stdout: relative(out.text()), stderr: relative(err.text()) };
}

const cases = readdirSync(fixtures, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();

/** The case's golden run, compared with (or, with UPDATE_GOLDEN=1, written to) its expected files. */
function golden(name: string, secrets: ClusterSecrets): Run {
  const dir = join(fixtures, name);
  const run = diff(join(dir, "old.yaml"), join(dir, "new.yaml"), secrets);
  const expected: [string, string][] = [
    ["expected-stdout.txt", run.stdout],
    ["expected-stderr.txt", run.stderr],
    ["expected-status.txt", `${run.status}\n`],
  ];
  for (const [file, actual] of expected) {
    const path = join(dir, file);
    if (update) writeFileSync(path, actual);
    assert.ok(existsSync(path), `${path} is missing: run with UPDATE_GOLDEN=1 to write it`);
    assert.equal(actual, readFileSync(path, "utf8"), `${name}/${file} (UPDATE_GOLDEN=1 rewrites it)`);
  }
  return run;
}

let shared: ClusterSecrets | undefined;

/**
 * Throwaway secrets for stacks/example-baremetal.yaml and its edited copies (every fixture): the same cluster, no VMs,
 * no external etcd, so one set renders them all (generating one takes seconds).
 */
function baremetalSecrets(): ClusterSecrets {
  const example = loadStackFile(join(root, "stacks", "example-baremetal.yaml"));
  shared ??= pairSecrets(example, example);
  return shared;
}

describe("nodeforge diff golden files", () => {
  let secrets: ClusterSecrets;
  before(() => {
    secrets = baremetalSecrets();
  });

  it("has the five cases", () => {
    assert.deepEqual(cases, ["added-worker", "cidr-refused", "kubelet-setting", "no-change", "version-bump"]);
  });

  it("version bump: new releases, kubeadm's configuration, containerd restarted", () => {
    const run = golden("version-bump", secrets);
    assert.equal(run.status, 1);
    assert.equal(run.stderr, "");
    assert.match(run.stdout, /^ {8}-kubernetesVersion: "v1\.35\.8"$/m);
    assert.match(run.stdout, /^ {8}\+kubernetesVersion: "v1\.36\.3"$/m);
    assert.match(run.stdout, /dl\.k8s\.io\/release\/v1\.36\.3\/bin\/linux\/amd64\/kubeadm/);
    assert.match(
      run.stdout,
      /^summary: 3 machines changed, .*restarts: .*containerd\.service on cp-1, worker-1, worker-2/m,
    );
  });

  it("added worker: its steps and files listed, the token re-issued, it joins", () => {
    const run = golden("added-worker", secrets);
    assert.equal(run.status, 1);
    assert.match(run.stdout, /^worker-3 \(worker, added\): prepared, then joins the cluster; /m);
    assert.match(run.stdout, /^ {6}\+ \/etc\/containerd\/config\.toml {2}0644 root:root, \d+ bytes$/m);
    assert.match(run.stdout, /kubeadm-join\.yaml {2}0600 root:root, secret: made of the cluster's secrets$/m);
    assert.match(run.stdout, /~ triggers: \["worker-1,worker-2"\] -> \["worker-1,worker-2,worker-3"\]/);
    assert.match(run.stdout, /^summary: .*joins: worker-3$/m);
  });

  it("kubelet setting: the drop-in's diff on every machine, the kubelet restarted if it runs", () => {
    const run = golden("kubelet-setting", secrets);
    assert.equal(run.status, 1);
    assert.equal(run.stdout.match(/^ {8}\+maxPods: 200$/gm)?.length, 3);
    assert.match(run.stdout, /^ {8}\+evictionHard: \{"memory\.available":"200Mi","nodefs\.available":"10%"\}$/m);
    assert.match(run.stdout, /restarts: kubelet\.service \(if running\) on cp-1, worker-1, worker-2/);
  });

  it("CIDR change: refused, naming the new file and cluster.podCIDR, exit 2", () => {
    const run = golden("cidr-refused", secrets);
    assert.equal(run.status, 2);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, /^test\/fixtures\/diff\/cidr-refused\/new\.yaml: cluster\.podCIDR: /m);
  });

  it("no change: exit 0", () => {
    const run = golden("no-change", secrets);
    assert.equal(run.status, 0);
    assert.match(run.stdout, /^summary: 0 machines changed, 0 steps, 0 files, restarts: none$/m);
  });

  it("README's sample is the kubelet-setting golden output (parts left out as `...`)", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const block = /```text\n(nodeforge diff test\/fixtures\/diff\/kubelet-setting\/[^`]*)```/.exec(readme)?.[1];
    assert.ok(block, "README.md has the sample");
    const expected = readFileSync(join(fixtures, "kubelet-setting", "expected-stdout.txt"), "utf8").split("\n");
    let at = 0;
    for (const line of block.trimEnd().split("\n")) {
      if (line === "...") continue;
      const found = expected.indexOf(line, at);
      assert.ok(found >= at, `README sample line not in the golden output (in order): ${line}`);
      at = found + 1;
    }
  });
});

/** A copy of a stack of stacks/ with edits, in the test's directory. */
function edited(stack: string, name: string, edits: [string, string][]): string {
  let text = readFileSync(join(root, "stacks", stack), "utf8");
  for (const [from, to] of edits) {
    assert.ok(text.includes(from), `${stack} has ${from}`);
    text = text.replace(from, to);
  }
  const path = join(work, name);
  writeFileSync(path, text);
  return path;
}

/** A host key's base64 from stacks/example-ha.yaml (the last character varied for each added machine). */
const hostKey = "AAAAC3NzaC1lZDI1NTE5AAAAIFxjsihwYVKZ5lPWbd04YC29aZKs+7QvHpW8xbA+RbvH";

/** Every form of a secret value that would give it away: whole, JSON-escaped, and each long line of it. */
function giveaways(secrets: ClusterSecrets): string[] {
  return maskedValues(secrets)
    .filter((v) => v.secret)
    .flatMap((v) => [v.value.trim(), JSON.stringify(v.value.trim()).slice(1, -1), ...v.value.split("\n")])
    .filter((form) => form.trim().length >= 16 && !/^-----(BEGIN|END) /.test(form));
}

describe("nodeforge diff never prints a secret", () => {
  /** Each pair with the secrets that render both sides (the test checks that none of them is printed). */
  const pairs: { name: string; old: () => string; new: () => string; shows: RegExp; own?: true }[] = [
    {
      // The join configuration's changed endpoint sits next to the bootstrap token and the CA hash.
      name: "control plane readdressed",
      old: () => join(root, "stacks", "example-baremetal.yaml"),
      new: () => edited("example-baremetal.yaml", "readdressed.yaml", [["192.0.2.10", "192.0.2.11"]]),
      shows: /^ {8}[ +-] {4}token: "<secret>"$/m,
    },
    {
      // A VM's cloud-init user-data holds its host's private key.
      name: "VM user changed",
      old: () => join(root, "stacks", "example-vms.yaml"),
      new: () =>
        edited("example-vms.yaml", "vm-user.yaml", [
          [
            "        nameservers: [192.0.2.1]\n      - name: worker-2",
            "        nameservers: [192.0.2.1]\n        ssh: { user: ops, sudo: true }\n      - name: worker-2",
          ],
        ]),
      shows: /^ {8}[ +-] {2}ed25519_private: "<secret>"$/m,
      own: true,
    },
    {
      // Members' keys and certificates, for members on both sides only (addresses are the stack's, shown).
      name: "external etcd members added",
      old: () => join(root, "stacks", "example-ha.yaml"),
      new: () =>
        edited("example-ha.yaml", "etcd-members.yaml", [
          [
            "\nssh:\n",
            [4, 5]
              .map(
                (n) =>
                  `      - name: etcd-${n}\n        address: 192.0.2.3${n}\n        os: debian-12\n` +
                  `        hostKey: ssh-ed25519 ${hostKey.slice(0, -1)}${n}\n`,
              )
              .join("") + "\nssh:\n",
          ],
        ]),
      shows: /^ {8}\+ {6}- "https:\/\/192\.0\.2\.35:2379"$/m,
      own: true,
    },
    ...cases.map((name) => ({
      name,
      old: () => join(fixtures, name, "old.yaml"),
      new: () => join(fixtures, name, "new.yaml"),
      shows: /./,
    })),
  ];
  for (const pair of pairs) {
    it(pair.name, () => {
      const [oldFile, newFile] = [pair.old(), pair.new()];
      const secrets = pair.own ? pairSecrets(loadStackFile(oldFile), loadStackFile(newFile)) : baremetalSecrets();
      const run = diff(oldFile, newFile, secrets);
      assert.match(run.stdout + run.stderr, pair.shows);
      const forms = giveaways(secrets);
      assert.ok(forms.length > 0);
      for (const form of forms) {
        assert.ok(!run.stdout.includes(form) && !run.stderr.includes(form), `${pair.name}: a secret is printed`);
      }
    });
  }

  it("a file whose only change is secret says so, and shows nothing of it", () => {
    const example = loadStackFile(join(root, "stacks", "example-baremetal.yaml"));
    const secrets = baremetalSecrets();
    const step = (secretName: "caKey" | "frontProxyCaKey"): PlannedStep => ({
      id: "cp-1-keys",
      step: "keys",
      machine: "cp-1",
      title: "keys",
      files: [{ path: "/etc/key", mode: "0600", owner: "root", group: "root", content: { secretName } }],
      script: "",
      deleteScript: "",
      units: [],
      triggers: [],
      after: [],
    });
    const found = diffPlans(
      { spec: example, plan: [step("caKey")] },
      { spec: example, plan: [step("frontProxyCaKey")] },
      secrets,
    );
    const text = formatPlanDiff(found, "old.yaml", "new.yaml");
    assert.match(text, /^ {6}~ \/etc\/key {2}secret content changes \(not shown\)$/m);
    for (const form of giveaways(secrets)) assert.ok(!text.includes(form));
  });
});

describe("nodeforge diff exit codes (as USAGE documents them)", () => {
  const nodeforge = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8" });
  const fixture = (name: string, side: "old" | "new") => join(fixtures, name, `${side}.yaml`);

  it("0 when nothing changes", () => {
    const run = nodeforge("diff", fixture("no-change", "old"), fixture("no-change", "new"));
    assert.equal(run.status, 0, run.stderr);
  });

  it("1 when something changes", () => {
    const run = nodeforge("diff", fixture("kubelet-setting", "old"), fixture("kubelet-setting", "new"));
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stdout, /^summary: /m);
  });

  it("2 when the change is refused", () => {
    const run = nodeforge("diff", fixture("cidr-refused", "old"), fixture("cidr-refused", "new"));
    assert.equal(run.status, 2);
    assert.match(run.stderr, /cluster\.podCIDR/);
  });

  it("2 when a file is invalid, its problems listed as validate lists them", () => {
    const bad = join(work, "bad.yaml");
    writeFileSync(bad, readFileSync(fixture("no-change", "new"), "utf8").replace("port: 2222", "port: 70000"));
    const run = nodeforge("diff", fixture("no-change", "old"), bad);
    assert.equal(run.status, 2);
    assert.match(run.stderr, /bad\.yaml:\d+:\d+: machines\[2\]\.ssh\.port: 70000 must be <= 65535/);
    assert.match(run.stderr, /bad\.yaml: 1 problem\(s\)/);
  });

  it("64 with usage on bad arguments; the usage documents the exit codes", () => {
    for (const args of [["diff"], ["diff", fixture("no-change", "old")], ["diff", "a", "b", "c"]]) {
      const run = nodeforge(...args);
      assert.equal(run.status, 64);
      assert.match(run.stderr, /nodeforge diff OLD NEW/);
      assert.match(run.stderr, /exit 0 when nothing changes, 1 when something does, 2 when a\s+file is invalid/);
    }
  });
});
