/**
 * Shell injection. The schema refuses most dangerous values (tested elsewhere); these tests cover what gets
 * through: shellQuote itself against real shells, stack values the schema allows that mean something to a
 * shell (`~`, `%`, `:`, `$` in the dnf repository URL) reaching scripts only quoted, values that bypass the
 * schema staying inert, and the template helpers refusing what they cannot quote.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { parse as parseToml } from "smol-toml";
import { DEFAULT_PINS } from "../../modules/pins";
import { render, shellQuote, shellWords } from "../../modules/render";
import type { StackSpec } from "../../modules/stack";
import { stepContext } from "../../modules/steps";
import { planMachine } from "../../modules/steps/plan";
import { scriptValues } from "../../modules/steps/values";
import {
  fileOf,
  ipv4StackYaml,
  renderStack,
  runProcess,
  stepOf,
  type RenderedMachine,
} from "../harness/render-fixtures";

const TMP = mkdtempSync(join(tmpdir(), "nf-injection-"));
after(() => rmSync(TMP, { recursive: true, force: true }));

/** Where a successful injection would leave its mark; every test asserts it never appears. */
const MARKER = join(TMP, "pwned");

/** Strings that would run a command, split, glob or expand if they reached a shell unquoted. */
const HOSTILE = [
  `$(touch ${MARKER})`,
  `\`touch ${MARKER}\``,
  `x; touch ${MARKER}`,
  `x && touch ${MARKER}`,
  `x | touch ${MARKER}`,
  `x\ntouch ${MARKER}\n`,
  `'; touch ${MARKER}; '`,
  `"; touch ${MARKER}; "`,
  `it's a "quoted" 'word'`,
  "'",
  "''",
  '"',
  "\\",
  "trailing backslash\\",
  "*",
  "/*",
  "?",
  "[a]*",
  "~",
  "~root/x",
  "$HOME",
  "${HOME}",
  "$((1+1))",
  "a b  c\td",
  " leading and trailing ",
  "",
  "-n",
  "--help",
  "!x",
  "#not a comment",
  "a=b c",
  "{a,b}",
  "%s %d",
  "ünïcødé ✓ 日本語 🚀",
  "line1\r\nline2",
];

async function shellPrints(shell: string, command: string) {
  // The working directory holds files, so an unquoted glob would visibly expand to their names.
  const cwd = mkdtempSync(join(TMP, "cwd-"));
  for (const name of ["a", "b", "ab"]) writeFileSync(join(cwd, name), "");
  return runProcess(shell, ["-c", command], { cwd, env: { ...process.env, HOME: "/home-of-the-test" } });
}

describe("shellQuote round-trips hostile strings through real shells", { concurrency: true }, () => {
  for (const shell of ["dash", "bash"]) {
    for (const value of HOSTILE) {
      it(`${shell}: ${JSON.stringify(value)}`, async () => {
        const result = await shellPrints(shell, `printf %s ${shellQuote(value)}`);
        assert.deepEqual(result, { code: 0, stdout: value, stderr: "" });
        assert.equal(existsSync(MARKER), false);
      });
    }
    it(`${shell}: shellWords keeps every value one argument, empty ones included`, async () => {
      const result = await shellPrints(shell, `printf '%s\\0' ${shellWords(HOSTILE)}`);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(result.stdout.split("\0").slice(0, -1), HOSTILE);
      assert.equal(existsSync(MARKER), false);
    });
  }

  it("leaves plain words bare and refuses NUL, which no shell word can carry", () => {
    assert.equal(shellQuote("cp-1"), "cp-1");
    assert.equal(shellQuote("/usr/local/bin/kubelet"), "/usr/local/bin/kubelet");
    assert.equal(shellQuote(""), "''");
    assert.equal(shellQuote("it's"), `'it'\\''s'`);
    assert.equal(shellQuote("~x"), "'~x'");
    assert.equal(shellQuote(42), "42");
    assert.throws(() => shellQuote("a\0b"), /NUL/);
  });
});

describe("stack values the schema allows reach scripts only quoted", () => {
  // Each character here is allowed by the schema's URL patterns and means something to some shell.
  const artifacts = {
    kubernetesBaseUrl: "http://mirror.example.internal:8080/~ops/k8s%2Brelease",
    crictlBaseUrl: "https://mirror.example.internal/~ops/cri%7Etools",
    cniPluginsBaseUrl: "https://mirror.example.internal/~ops/cni%2Bplugins",
    etcdBaseUrl: "https://mirror.example.internal/~ops/etcd%2Breleases",
    containerdBaseUrl: "https://mirror.example.internal/~ops/containerd%2Breleases",
    runcBaseUrl: "https://mirror.example.internal/~ops/runc%7Ereleases",
  };
  const registryMirrors = { "docker.io": ["https://mirror.example.internal/~ops/%7Ecache:5000"] };
  const rendered = renderStack("shell-characters", ipv4StackYaml({ artifacts, registryMirrors }));
  const rocky = rendered.find((r) => r.machine.os === "rocky-9" && r.machine.arch === "arm64") as RenderedMachine;

  it("the schema accepts these values unchanged (the premise of the tests below)", () => {
    const [first] = rendered;
    assert.ok(first && rocky);
    assert.deepEqual(first.stack.artifacts, { ...artifacts, sha256: {} });
    assert.deepEqual(first.stack.containerd.registryMirrors, registryMirrors);
  });

  it("every script parses", async () => {
    for (const machine of rendered) {
      for (const step of machine.steps) {
        for (const script of [step.script, step.deleteScript ?? ""]) {
          const path = join(mkdtempSync(join(TMP, "parse-")), "script.sh");
          writeFileSync(path, script);
          assert.deepEqual(await runProcess("dash", ["-n", path]), { code: 0, stdout: "", stderr: "" });
        }
      }
    }
  });

  it("containerd and runc URLs appear single-quoted and arrive as exactly one argument each", async () => {
    const script = stepOf(rocky, "install-containerd").script;
    const containerd = `${artifacts.containerdBaseUrl}/v2.3.4/containerd-2.3.4-linux-arm64.tar.gz`;
    const runc = `${artifacts.runcBaseUrl}/v1.4.3/runc.arm64`;
    const rest = [containerd, runc].reduce((text, url) => text.split(shellQuote(url)).join(""), script);
    assert.equal(rest.includes(artifacts.containerdBaseUrl), false);
    assert.equal(rest.includes(artifacts.runcBaseUrl), false);
    const calls = script
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => /^nf_(install_binary|fetch) [^"$]/.test(line));
    const program = [
      'nf_install_binary() { printf "%s\\n" "$#" "$@"; }',
      'nf_fetch() { nf_install_binary "$@"; }',
      ...calls,
    ];
    const expected = [
      ["3", containerd, DEFAULT_PINS.containerd["2.3.4"]?.arm64, "/var/lib/nodeforge/containerd.tar.gz"],
      ["3", runc, DEFAULT_PINS.runc.sha256.arm64, "/usr/local/sbin/runc"],
    ];
    assert.deepEqual(await shellPrints("dash", program.join("\n")), {
      code: 0,
      stdout: `${expected.flat().join("\n")}\n`,
      stderr: "",
    });
    assert.equal(existsSync(MARKER), false);
  });

  it("registry mirror URLs reach hosts.toml as TOML strings, unchanged", () => {
    const hosts = parseToml(
      fileOf(stepOf(rocky, "install-containerd"), "/etc/containerd/certs.d/docker.io/hosts.toml"),
    );
    assert.deepEqual(Object.keys(hosts.host as object), registryMirrors["docker.io"]);
  });

  it("download URLs appear single-quoted and arrive as exactly one argument each", async () => {
    const script = stepOf(rocky, "install-kubelet").script;
    const kubelet = `${artifacts.kubernetesBaseUrl}/v1.36.4/bin/linux/arm64/kubelet`;
    const crictl = `${artifacts.crictlBaseUrl}/v1.36.0/crictl-v1.36.0-linux-arm64.tar.gz`;
    const cniPlugins = `${artifacts.cniPluginsBaseUrl}/v1.9.1/cni-plugins-linux-arm64-v1.9.1.tgz`;
    assert.ok(script.includes(`nf_install_binary 'http://mirror.example.internal:8080/~ops/k8s%2Brelease/v1.36.4/`));
    // Outside their quoted form the base URLs must not occur at all.
    const quotedUrls = ["kubelet", "kubeadm", "kubectl"]
      .map((name) => shellQuote(`${artifacts.kubernetesBaseUrl}/v1.36.4/bin/linux/arm64/${name}`))
      .concat(shellQuote(crictl), shellQuote(cniPlugins));
    const rest = quotedUrls.reduce((text, quoted) => text.split(quoted).join(""), script);
    assert.equal(rest.includes(artifacts.kubernetesBaseUrl), false);
    assert.equal(rest.includes(artifacts.crictlBaseUrl), false);
    assert.equal(rest.includes(artifacts.cniPluginsBaseUrl), false);

    // Run only the download calls (not the ones inside function bodies, which pass "$1" on), with stand-ins
    // that print their argument count and arguments one per line.
    const calls = script
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => /^nf_(install_binary|fetch) [^"$]/.test(line));
    assert.equal(calls.length, 6);
    const program = [
      'nf_install_binary() { printf "%s\\n" "$#" "$@"; }',
      'nf_fetch() { nf_install_binary "$@"; }',
      ...calls,
    ];
    const result = await shellPrints("dash", program.join("\n"));
    const pins = DEFAULT_PINS.kubernetes["1.36.4"]?.binaries.arm64;
    assert.ok(pins);
    const expected = [
      ["3", kubelet, pins.kubelet, "/usr/local/bin/kubelet.nodeforge-upgrade"],
      ["3", kubelet, pins.kubelet, "/usr/local/bin/kubelet"],
      ["3", kubelet.replace(/kubelet$/, "kubeadm"), pins.kubeadm, "/usr/local/bin/kubeadm"],
      ["3", kubelet.replace(/kubelet$/, "kubectl"), pins.kubectl, "/usr/local/bin/kubectl"],
      ["3", crictl, DEFAULT_PINS.crictl["1.36.0"]?.arm64, "/var/lib/nodeforge/crictl.tar.gz"],
      ["3", cniPlugins, DEFAULT_PINS.cniPlugins["1.9.1"]?.arm64, "/var/lib/nodeforge/cni-plugins.tgz"],
    ];
    assert.deepEqual(result, { code: 0, stdout: `${expected.flat().join("\n")}\n`, stderr: "" });
    assert.equal(existsSync(MARKER), false);
  });

  it("under sudo's secure_path (RHEL's, without /usr/local/bin) the prelude still finds nodeforge's programs", async () => {
    const ctx = stepContext(rocky.stack, rocky.machine);
    const prelude = render("partials/prelude.sh.hbs", scriptValues(ctx.machine.name, ctx.os, "kubeadm-init"));
    const result = await runProcess("dash", ["-c", `${prelude}\nprintf '%s' "$PATH"`], {
      env: { PATH: "/sbin:/bin:/usr/sbin:/usr/bin" },
    });
    assert.deepEqual(result, { code: 0, stdout: "/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin", stderr: "" });
  });

  it("the preflight prelude parses and sets the machine's values, nothing more", async () => {
    const ctx = stepContext(rocky.stack, rocky.machine);
    const prelude = render("partials/prelude.sh.hbs", scriptValues(ctx.machine.name, ctx.os, "preflight"));
    const script = stepOf(rocky, "preflight").script;
    assert.ok(script.startsWith(prelude));
    const result = await shellPrints("dash", `${prelude}\nprintf '%s\\n' "$nf_machine" "$nf_step" "$nf_state"`);
    assert.deepEqual(result, { code: 0, stdout: "rocky-9-arm64\npreflight\n/var/lib/nodeforge\n", stderr: "" });
  });
});

describe("values that bypass the schema still stay inert in every script's prelude", () => {
  /*
   * Defence in depth: a StackSpec built by code instead of the loader skips the schema. A machine name full
   * of shell syntax must still only ever be data: nf_machine holds it verbatim and nothing runs. (A machine
   * name in a script comment used to escape here: a newline ends a comment, and quoting cannot help.)
   */
  const hostileName = `cp-1$(touch ${MARKER})\`touch ${MARKER}\`\ntouch ${MARKER} # '"`;
  const [base] = renderStack("bypass", ipv4StackYaml());
  assert.ok(base);
  const stack: StackSpec = structuredClone(base.stack);
  const machine = stack.machines[0];
  assert.ok(machine);
  machine.name = hostileName;

  for (const planned of planMachine(stack, machine)) {
    const scripts = [{ kind: "script", text: planned.script }];
    if (planned.deleteScript !== undefined) scripts.push({ kind: "delete script", text: planned.deleteScript });
    for (const { kind, text } of scripts) {
      it(`${planned.step.name} ${kind}`, async () => {
        const prelude = render(
          "partials/prelude.sh.hbs",
          scriptValues(machine.name, stepContext(stack, machine).os, planned.step.name),
        );
        assert.ok(text.startsWith(prelude));
        // Outside its quoted form the name's command part never appears.
        assert.equal(text.split(shellQuote(hostileName)).join("").includes(`touch ${MARKER}`), false);
        const path = join(mkdtempSync(join(TMP, "bypass-")), "script.sh");
        writeFileSync(path, text);
        assert.deepEqual(await runProcess("dash", ["-n", path]), { code: 0, stdout: "", stderr: "" });
        const result = await shellPrints("dash", `${prelude}\nprintf '%s' "$nf_machine"`);
        assert.deepEqual(result, { code: 0, stdout: hostileName, stderr: "" });
        assert.equal(existsSync(MARKER), false);
      });
    }
  }
});

describe("template helpers refuse what they cannot quote", () => {
  const unitValues = {
    baseConfig: "/var/lib/kubelet/config.yaml",
    envFile: "/etc/kubernetes/nodeforge-kubelet.env",
    kubeletPath: "/usr/local/bin/kubelet",
    configDir: "/etc/kubernetes/kubelet.conf.d",
  };

  it("unitword passes a plain path through unchanged", () => {
    assert.match(render("kubelet/kubelet.service.hbs", unitValues), /^ExecStart=\/usr\/local\/bin\/kubelet \\$/m);
  });

  for (const bad of ["/usr/local/bin/my kubelet", "/x'y", '/x"y', "/x\ny", "/x\\y", "/x;y", "/x$y", "/x`y`", "", " "]) {
    it(`unitword refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(
        () => render("kubelet/kubelet.service.hbs", { ...unitValues, kubeletPath: bad }),
        (error: Error) =>
          error.message ===
          `template kubelet/kubelet.service.hbs: template helper unitword: unsafe value ${JSON.stringify(bad)}`,
      );
    });
  }

  /** configure-kubelet's script template: the prelude's values plus two of its own, all through `sh`. */
  const scriptValuesWith = (configHash: unknown) => ({
    machine: "cp-1",
    step: "configure-kubelet",
    stateDir: "/var/lib/nodeforge",
    binDir: "/usr/local/bin",
    baseConfig: "/var/lib/kubelet/config.yaml",
    configHash,
  });

  it("sh quotes strings, numbers and booleans", () => {
    assert.match(render("scripts/configure-kubelet.sh.hbs", scriptValuesWith("a b")), /^nf_stamp kubelet 'a b'$/m);
    assert.match(render("scripts/configure-kubelet.sh.hbs", scriptValuesWith(7)), /^nf_stamp kubelet 7$/m);
    assert.match(render("scripts/configure-kubelet.sh.hbs", scriptValuesWith(true)), /^nf_stamp kubelet true$/m);
  });

  const refusal = "template helper sh: expected a string, number or boolean, got object";
  for (const [what, value] of [
    ["an object", { toString: () => "x" }],
    ["an array", ["a", "b"]],
    ["null", null],
  ] as const) {
    it(`sh refuses ${what}`, () => {
      assert.throws(
        () => render("scripts/configure-kubelet.sh.hbs", scriptValuesWith(value)),
        (error: Error) => error.message === `template scripts/configure-kubelet.sh.hbs: ${refusal}`,
      );
    });
  }
});
