/**
 * Every template, rendered for every OS x arch (test/harness/render-fixtures.ts), checked by the tools that
 * will read it: shellcheck and dash for scripts, systemd-analyze for units, real TOML and YAML parsers for
 * configuration files, and a real run of the download function against a local HTTP server.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse as parseToml } from "smol-toml";
import { parse as parseYaml } from "yaml";
import { DEFAULT_PINS } from "../../modules/pins";
import { projectRoot } from "../../modules/project-root";
import { render, shellQuote } from "../../modules/render";
import type { OsName } from "../../modules/stack";
import { stepContext, type ManagedFile } from "../../modules/steps";
import { kubernetesArtifacts } from "../../modules/steps/install-kubelet";
import { scriptValues } from "../../modules/steps/values";
import {
  FIXTURE_LABELS,
  FIXTURE_TAINTS,
  fileOf,
  ipv4StackYaml,
  MIRROR_CONTAINERD_BASE,
  MIRROR_CRICTL_BASE,
  MIRROR_K8S_BASE,
  MIRROR_RUNC_BASE,
  REGISTRY_MIRRORS,
  renderAll,
  renderStack,
  runProcess,
  stepOf,
  type RenderedMachine,
} from "../harness/render-fixtures";

const TMP = mkdtempSync(join(tmpdir(), "nf-templates-"));
after(() => rmSync(TMP, { recursive: true, force: true }));

const RENDERED = renderAll();
const STEP_NAMES = ["preflight", "install-containerd", "install-kubelet", "configure-kubelet"];

const KUBELET_DROP_IN = "/etc/kubernetes/kubelet.conf.d/10-nodeforge.conf";
const KUBELET_ENV = "/etc/kubernetes/nodeforge-kubelet.env";
const KUBELET_UNIT = "/etc/systemd/system/kubelet.service";
const CONTAINERD_CONFIG = "/etc/containerd/config.toml";
const CONTAINERD_UNIT = "/etc/systemd/system/containerd.service";
const CRICTL_CONFIG = "/etc/crictl.yaml";
const UPSTREAM_K8S_BASE = "https://dl.k8s.io/release";
const UPSTREAM_CRICTL_BASE = "https://github.com/kubernetes-sigs/cri-tools/releases/download";

/** shellcheck as POSIX sh, reporting every finding down to style level, one line per finding. */
function shellcheck(paths: readonly string[]) {
  return runProcess("shellcheck", ["-s", "sh", "-S", "style", "-f", "gcc", ...paths]);
}

function label(rendered: RenderedMachine): string {
  return `${rendered.variant}/${rendered.machine.name} (${rendered.machine.os} ${rendered.machine.arch})`;
}

function allFiles(rendered: RenderedMachine): ManagedFile[] {
  return rendered.steps.flatMap((step) => step.files);
}

/** Every script and delete script of a machine, named after its step. */
function scriptsOf(rendered: RenderedMachine): { name: string; text: string }[] {
  return rendered.steps.flatMap((step) => [
    { name: `${step.step.name}.sh`, text: step.script },
    ...(step.deleteScript === undefined ? [] : [{ name: `${step.step.name}.delete.sh`, text: step.deleteScript }]),
  ]);
}

/** The value at a path of nested tables, failing with the path when any level is missing. */
function at(value: unknown, ...keys: string[]): unknown {
  let node = value;
  for (const [i, key] of keys.entries()) {
    if (typeof node !== "object" || node === null || !(key in node)) {
      assert.fail(`missing ${keys.slice(0, i + 1).join(" > ")}`);
    }
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/** Rendered scripts carry their prelude (shared variables and functions) first; see templates/partials. */
function preludeOf(rendered: RenderedMachine, step: string): string {
  const ctx = stepContext(rendered.stack, rendered.machine);
  const prelude = render("partials/prelude.sh.hbs", scriptValues(ctx.machine.name, ctx.os, step));
  assert.ok(stepOf(rendered, step).script.startsWith(prelude), `${step} script starts with the prelude`);
  return prelude;
}

describe("every machine gets every step", () => {
  it("plans the four provisioning steps for each OS x arch in both fixture stacks", () => {
    assert.equal(RENDERED.length, 16);
    for (const rendered of RENDERED) {
      const names = rendered.steps.map((s) => s.step.name);
      for (const name of STEP_NAMES) assert.ok(names.includes(name), `${label(rendered)} has ${name}`);
    }
  });
});

describe(
  "shell scripts: shellcheck finds nothing, even at style level, and dash parses them",
  { concurrency: true },
  () => {
    for (const rendered of RENDERED) {
      it(label(rendered), async () => {
        const dir = mkdtempSync(join(TMP, "scripts-"));
        const scripts = scriptsOf(rendered);
        // Three of the steps undo themselves on destroy; a missing delete script must not go unchecked.
        assert.ok(scripts.length >= STEP_NAMES.length + 3, `${scripts.length} scripts`);
        const paths = scripts.map(({ name, text }) => {
          assert.ok(text.startsWith("#!/bin/sh\n"), `${name} starts with #!/bin/sh`);
          const path = join(dir, name);
          writeFileSync(path, text);
          return path;
        });
        const check = await shellcheck(paths);
        assert.equal(check.stdout + check.stderr, "", "shellcheck findings");
        assert.equal(check.code, 0);
        for (const path of paths) {
          assert.deepEqual(await runProcess("dash", ["-n", path]), { code: 0, stdout: "", stderr: "" }, path);
        }
      });
    }

    it("the check itself fails on a style-level finding and on a syntax error", async () => {
      const dir = mkdtempSync(join(TMP, "scripts-"));
      // SC2006 (legacy backticks) is a style-level finding, the lowest severity.
      writeFileSync(join(dir, "style.sh"), '#!/bin/sh\nnf_x=`date`\nprintf "%s\\n" "$nf_x"\n');
      writeFileSync(join(dir, "syntax.sh"), "#!/bin/sh\nif true; then\n  :\n");
      const style = await shellcheck([join(dir, "style.sh")]);
      assert.match(style.stdout, /SC2006/);
      assert.notEqual(style.code, 0);
      const syntax = await runProcess("dash", ["-n", join(dir, "syntax.sh")]);
      assert.notEqual(syntax.code, 0);
      assert.match(syntax.stderr, /Syntax error/);
    });
  },
);

describe("systemd units and drop-ins: systemd-analyze verify prints nothing", { concurrency: true }, () => {
  /*
   * verify runs in a temporary root (--root): systemd then resolves every path inside that tree, so the
   * "is the ExecStart= command executable" check is real and independent of this host. The tree holds a copy
   * of this host's own system units (sysinit.target and the like), nodeforge's rendered units under
   * /etc/systemd/system, and stand-in executables at exactly the paths install-kubelet and install-containerd
   * install programs to (and /sbin/modprobe, which containerd's unit runs first).
   * systemd-analyze only warns about unknown keys and sections, so any output at all is a failure.
   */
  const hostUnits = ["/usr/lib/systemd/system", "/lib/systemd/system"].find((d) =>
    existsSync(join(d, "sysinit.target")),
  );
  function writeExecutable(path: string): void {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, "#!/bin/sh\n# test stand-in\nexit 0\n");
    chmodSync(path, 0o755);
  }

  /** Verifies the units among `files` (units and drop-ins under /etc/systemd/system) in a fresh root. */
  async function verifyUnits(files: readonly ManagedFile[], executables: readonly string[]) {
    assert.ok(hostUnits, "this host has systemd's unit directory");
    const root = mkdtempSync(join(TMP, "root-"));
    const unitDir = realpathSync(hostUnits);
    cpSync(unitDir, join(root, unitDir), { recursive: true, verbatimSymlinks: true });
    for (const path of [...executables, "/sbin/modprobe"]) writeExecutable(join(root, path));
    const units = new Set<string>();
    for (const file of files.filter((f) => f.path.startsWith("/etc/systemd/system/"))) {
      mkdirSync(dirname(join(root, file.path)), { recursive: true });
      writeFileSync(join(root, file.path), file.content);
      // A drop-in (unit.d/x.conf) is verified through the unit it extends.
      units.add((relative("/etc/systemd/system", file.path).split("/")[0] as string).replace(/\.d$/, ""));
    }
    const args = ["verify", `--root=${root}`, "--man=no", "--generators=no", ...[...units].sort()];
    const result = await runProcess("systemd-analyze", args);
    return {
      ok: result.code === 0 && result.stdout + result.stderr === "",
      output: result.stdout + result.stderr,
      units,
    };
  }

  const binaries = (rendered: RenderedMachine) => [
    ...kubernetesArtifacts(stepContext(rendered.stack, rendered.machine)).map((a) => a.dest),
    "/usr/local/bin/containerd",
  ];

  for (const rendered of RENDERED) {
    it(label(rendered), async () => {
      const result = await verifyUnits(allFiles(rendered), binaries(rendered));
      assert.deepEqual([...result.units].sort(), ["containerd.service", "kubelet.service"]);
      assert.equal(result.output, "");
      assert.ok(result.ok);
    });
  }

  describe("the check itself fails on broken units", () => {
    const [first] = RENDERED;
    assert.ok(first);
    const files = allFiles(first);
    const broken = (path: string, edit: (content: string) => string) =>
      files.map((f) => (f.path === path ? { ...f, content: edit(f.content) } : f));

    it("an unknown key in kubelet.service", async () => {
      const result = await verifyUnits(
        broken(KUBELET_UNIT, (c) => c.replace("[Service]\n", "[Service]\nFoo=bar\n")),
        binaries(first),
      );
      assert.match(result.output, /Unknown key 'Foo'/);
      assert.equal(result.ok, false);
    });

    it("a misspelt section in kubelet.service", async () => {
      const result = await verifyUnits(
        broken(KUBELET_UNIT, (c) => c.replace("[Service]", "[Servce]")),
        binaries(first),
      );
      assert.match(result.output, /Unknown section 'Servce'/);
      assert.equal(result.ok, false);
    });

    it("an unknown key in containerd.service", async () => {
      const result = await verifyUnits(
        broken(CONTAINERD_UNIT, (c) => c.replace("[Service]\n", "[Service]\nFoo=bar\n")),
        binaries(first),
      );
      assert.match(result.output, /containerd\.service:\d+: Unknown key 'Foo'/);
      assert.equal(result.ok, false);
    });

    it("a bad value in containerd.service", async () => {
      const result = await verifyUnits(
        broken(CONTAINERD_UNIT, (c) => c.replace("Restart=always", "Restart=sometimes")),
        binaries(first),
      );
      assert.match(result.output, /restart specifier/);
      assert.equal(result.ok, false);
    });

    it("a kubelet binary that is not where install-kubelet puts it", async () => {
      const result = await verifyUnits(files, []);
      assert.match(result.output, /\/usr\/local\/bin\/kubelet is not executable/);
      assert.equal(result.ok, false);
    });
  });
});

describe("containerd TOML files parse and carry the values the kubelet and the stack expect", () => {
  for (const rendered of RENDERED) {
    it(label(rendered), () => {
      const { stack } = rendered;
      const step = stepOf(rendered, "install-containerd");
      const config = parseToml(fileOf(step, CONTAINERD_CONFIG));
      const images = at(config, "plugins", "io.containerd.cri.v1.images");
      const runtime = at(config, "plugins", "io.containerd.cri.v1.runtime");
      // Version 3: the config of containerd 2.x, the only releases nodeforge installs.
      assert.equal(at(config, "version"), 3);
      const containerdVersion = DEFAULT_PINS.kubernetes[stack.cluster.kubernetesVersion]?.containerdVersion ?? "";
      assert.match(containerdVersion, /^2\./);
      assert.equal(at(config, "grpc", "address"), "/run/containerd/containerd.sock");
      const pause = DEFAULT_PINS.kubernetes[stack.cluster.kubernetesVersion]?.pauseImage;
      assert.equal(at(images, "pinned_images", "sandbox"), pause);
      assert.match(pause ?? "", /^registry\.k8s\.io\/pause:3\.10\.[12]$/);
      assert.equal(at(runtime, "containerd", "default_runtime_name"), "runc");
      assert.equal(at(runtime, "containerd", "runtimes", "runc", "runtime_type"), "io.containerd.runc.v2");
      assert.equal(at(runtime, "containerd", "runtimes", "runc", "options", "SystemdCgroup"), true);
      assert.deepEqual(at(runtime, "cni", "bin_dirs"), ["/opt/cni/bin"]);
      assert.equal(at(runtime, "cni", "conf_dir"), "/etc/cni/net.d");
      assert.equal(at(images, "registry", "config_path"), "/etc/containerd/certs.d");

      const hostsFiles = step.files.filter((f) => f.path.startsWith("/etc/containerd/certs.d/")).map((f) => f.path);
      const mirrors = rendered.variant === "ipv4" ? REGISTRY_MIRRORS : {};
      assert.deepEqual(
        hostsFiles.sort(),
        Object.keys(mirrors)
          .map((r) => `/etc/containerd/certs.d/${r}/hosts.toml`)
          .sort(),
      );
      for (const [registry, urls] of Object.entries(mirrors)) {
        const hosts = parseToml(fileOf(step, `/etc/containerd/certs.d/${registry}/hosts.toml`));
        const server = registry === "docker.io" ? "https://registry-1.docker.io" : `https://${registry}`;
        assert.equal(at(hosts, "server"), server);
        // Mirrors are tried in file order, so the order of the stack file must survive.
        assert.deepEqual(Object.keys(at(hosts, "host") as object), urls);
        for (const url of urls) assert.deepEqual(at(hosts, "host", url, "capabilities"), ["pull", "resolve"]);
      }
    });
  }

  it("the sandbox image follows the Kubernetes version's pin", () => {
    for (const [version, pause] of [
      ["1.35.8", "registry.k8s.io/pause:3.10.1"],
      ["1.36.3", "registry.k8s.io/pause:3.10.2"],
    ] as const) {
      const [machine] = renderStack(`k8s-${version}`, ipv4StackYaml({ kubernetesVersion: version }));
      assert.ok(machine);
      const config = parseToml(fileOf(stepOf(machine, "install-containerd"), CONTAINERD_CONFIG));
      assert.equal(at(config, "plugins", "io.containerd.cri.v1.images", "pinned_images", "sandbox"), pause);
      assert.equal(DEFAULT_PINS.kubernetes[version]?.pauseImage, pause);
    }
  });
});

describe("kubelet and crictl YAML files parse and agree with each other and the stack", () => {
  const expected = {
    ipv4: {
      clusterDomain: "cluster.local",
      clusterDNS: ["10.96.0.10"],
      maxPods: 150,
      podPidsLimit: 4096,
      systemReserved: { cpu: "100m", memory: "256Mi" },
      kubeReserved: { cpu: "200m", memory: "512Mi", "ephemeral-storage": "1Gi" },
      evictionHard: { "memory.available": "100Mi", "nodefs.available": "10%" },
    },
    ipv6: {
      clusterDomain: "v6.example",
      clusterDNS: ["fd00:10:96::a"],
      maxPods: 110,
      podPidsLimit: -1,
      systemReserved: {},
      kubeReserved: {},
      evictionHard: undefined,
    },
  } as const;

  for (const rendered of RENDERED) {
    it(label(rendered), () => {
      const { stack, machine } = rendered;
      const want = expected[rendered.variant as keyof typeof expected];
      const kubelet = parseYaml(fileOf(stepOf(rendered, "configure-kubelet"), KUBELET_DROP_IN)) as Record<
        string,
        unknown
      >;
      const crictl = parseYaml(fileOf(stepOf(rendered, "install-containerd"), CRICTL_CONFIG)) as Record<
        string,
        unknown
      >;
      const containerd = parseToml(fileOf(stepOf(rendered, "install-containerd"), CONTAINERD_CONFIG));

      assert.equal(kubelet.kind, "KubeletConfiguration");
      assert.equal(kubelet.apiVersion, "kubelet.config.k8s.io/v1beta1");
      assert.equal(kubelet.cgroupDriver, "systemd");
      // The CRI socket is defined once: kubelet, crictl and containerd's own listener must agree.
      assert.equal(kubelet.containerRuntimeEndpoint, "unix:///run/containerd/containerd.sock");
      assert.equal(crictl["runtime-endpoint"], kubelet.containerRuntimeEndpoint);
      assert.equal(crictl["image-endpoint"], kubelet.containerRuntimeEndpoint);
      assert.equal(`unix://${String(at(containerd, "grpc", "address"))}`, kubelet.containerRuntimeEndpoint);
      assert.equal(crictl.timeout, 10);

      assert.deepEqual(kubelet.clusterDNS, [stack.derived.clusterDnsIp]);
      assert.deepEqual(kubelet.clusterDNS, want.clusterDNS);
      assert.equal(kubelet.clusterDomain, want.clusterDomain);
      assert.equal(kubelet.maxPods, want.maxPods);
      assert.equal(kubelet.podPidsLimit, want.podPidsLimit);
      assert.deepEqual(kubelet.systemReserved, want.systemReserved);
      assert.deepEqual(kubelet.kubeReserved, want.kubeReserved);
      assert.deepEqual(kubelet.evictionHard, want.evictionHard);
      assert.equal(kubelet.failSwapOn, true);
      assert.deepEqual(kubelet.registerWithTaints, machine.arch === "arm64" ? FIXTURE_TAINTS : []);
      assert.deepEqual(kubelet.registerWithTaints, machine.taints);
    });
  }
});

describe("kubelet.service and its environment file", () => {
  for (const rendered of RENDERED) {
    it(label(rendered), () => {
      const { machine } = rendered;
      const step = stepOf(rendered, "configure-kubelet");
      const env = fileOf(step, KUBELET_ENV);
      const lines = env.split("\n").filter((line) => line !== "" && !line.startsWith("#"));
      assert.equal(lines.length, 1);
      const match = /^KUBELET_NODEFORGE_ARGS=(.*)$/.exec(lines[0] as string);
      assert.ok(match, lines[0]);
      const labels = Object.entries(machine.arch === "arm64" ? FIXTURE_LABELS : {}).map(([k, v]) => `${k}=${v}`);
      assert.deepEqual((match[1] as string).split(" "), [
        `--hostname-override=${machine.name}`,
        `--node-ip=${machine.address}`,
        ...(labels.length > 0 ? [`--node-labels=${labels.join(",")}`] : []),
      ]);

      // The unit reads the files this step writes, from the same paths.
      const unit = fileOf(step, KUBELET_UNIT);
      assert.match(unit, new RegExp(`^EnvironmentFile=${KUBELET_ENV}$`, "m"));
      assert.equal(/--config-dir=(\S+)/.exec(unit)?.[1], dirname(KUBELET_DROP_IN));
      assert.equal(/--config=(\S+)/.exec(unit)?.[1], /^ConditionPathExists=(\S+)$/m.exec(unit)?.[1]);
      assert.match(unit, /\$KUBELET_NODEFORGE_ARGS/);
    });
  }
});

describe("OS-specific package handling and preflight identity checks", () => {
  const osRelease: Record<OsName, { id: string; version: string; wrong: string; says: string }> = {
    "debian-12": { id: "debian", version: "12", wrong: 'ID=debian\nVERSION_ID="11"\n', says: "debian 11" },
    "ubuntu-22.04": { id: "ubuntu", version: "22.04", wrong: 'ID=ubuntu\nVERSION_ID="24.04"\n', says: "ubuntu 24.04" },
    "ubuntu-24.04": { id: "ubuntu", version: "24.04", wrong: 'ID=ubuntu\nVERSION_ID="22.04"\n', says: "ubuntu 22.04" },
    // Rocky's VERSION_ID carries the minor release; only the major version is compared.
    "rocky-9": { id: "rocky", version: "9.4", wrong: 'ID="rocky"\nVERSION_ID="8.9"\n', says: "rocky 8" },
  };
  const unameOf = { amd64: "x86_64", arm64: "aarch64" } as const;

  /**
   * The preflight's identity checks (os-release, then architecture) with the prelude's functions, reading
   * the given os-release file instead of /etc/os-release. Nothing else of the script is run.
   */
  function identityProgram(rendered: RenderedMachine, osReleaseFile: string): string {
    const script = stepOf(rendered, "preflight").script;
    const start = script.indexOf("nf_os_id=$(");
    const archCheck = /^\[ "\$nf_arch" = .*$/m.exec(script);
    assert.ok(start >= 0 && archCheck, "preflight has the os-release and arch checks");
    const portion = script.slice(start, archCheck.index + archCheck[0].length);
    const replaced = portion.split(". /etc/os-release").join(`. ${shellQuote(osReleaseFile)}`);
    assert.equal(replaced.split(osReleaseFile).length - 1, 2, "both os-release reads redirected");
    return `${preludeOf(rendered, "preflight")}\n${replaced}\n`;
  }

  async function runIdentity(rendered: RenderedMachine, osReleaseText: string, uname: string) {
    const dir = mkdtempSync(join(TMP, "identity-"));
    writeFileSync(join(dir, "os-release"), osReleaseText);
    // uname is the one external command the checks call; a stub reports the architecture under test.
    mkdirSync(join(dir, "bin"));
    writeFileSync(join(dir, "bin", "uname"), `#!/bin/sh\nprintf '%s\\n' ${shellQuote(uname)}\n`);
    chmodSync(join(dir, "bin", "uname"), 0o755);
    writeFileSync(join(dir, "check.sh"), identityProgram(rendered, join(dir, "os-release")));
    const env = { ...process.env, PATH: `${join(dir, "bin")}:${process.env.PATH ?? "/usr/bin:/bin"}` };
    return runProcess("dash", [join(dir, "check.sh")], { env });
  }

  for (const rendered of RENDERED) {
    it(label(rendered), async () => {
      const { machine } = rendered;
      const install = stepOf(rendered, "install-containerd");
      const uninstall = install.deleteScript ?? "";
      const rhel = machine.os === "rocky-9";
      // containerd and runc come from their upstream releases on every OS: no package provides them.
      assert.equal(
        install.files.some((f) => f.path.startsWith("/etc/yum.repos.d/")),
        false,
      );
      assert.doesNotMatch(install.script, /^nf_pkg_ensure .*\b(containerd|containerd\.io|runc)\b/m);
      if (rhel) {
        assert.match(install.script, /^ {2}dnf -q -y install "\$@"$/m);
        assert.match(install.script, /^ {2}rpm -q "\$1"/m);
        assert.match(uninstall, /^ {2}dnf -q -y remove "\$@"$/m);
        for (const text of [install.script, uninstall]) assert.doesNotMatch(text, /apt-get|dpkg/);
      } else {
        assert.match(install.script, /apt-get -q -y .*install --no-install-recommends "\$@"/);
        assert.match(install.script, /apt-get -q update/);
        assert.match(install.script, /dpkg-query -W/);
        assert.match(uninstall, /apt-get -q -y purge "\$@"/);
        for (const text of [install.script, uninstall]) assert.doesNotMatch(text, /\bdnf\b|\brpm\b/);
      }

      const want = osRelease[machine.os];
      const script = stepOf(rendered, "preflight").script;
      const versionCompared = rhel ? want.version.split(".")[0] : want.version;
      assert.match(
        script,
        new RegExp(`"\\$nf_os_id" != ${want.id} \\] \\|\\| \\[ "\\$nf_os_version" != ${versionCompared} \\]`),
      );
      assert.equal(script.includes("nf_os_version=${nf_os_version%%.*}"), rhel);

      const right = `ID=${want.id}\nVERSION_ID="${want.version}"\nPRETTY_NAME="test double"\n`;
      const other = machine.arch === "amd64" ? "arm64" : "amd64";
      const prefix = `${machine.name}: preflight: `;
      assert.deepEqual(await runIdentity(rendered, right, unameOf[machine.arch]), { code: 0, stdout: "", stderr: "" });
      assert.deepEqual(await runIdentity(rendered, want.wrong, unameOf[machine.arch]), {
        code: 1,
        stdout: "",
        stderr: `${prefix}/etc/os-release says ${want.says} but the stack file says ${machine.os}\n`,
      });
      assert.deepEqual(await runIdentity(rendered, right, unameOf[other]), {
        code: 1,
        stdout: "",
        stderr: `${prefix}machine is ${other} but the stack file says ${machine.arch}\n`,
      });
    });
  }

  it("only IPv6 clusters turn on IPv6 forwarding", () => {
    for (const rendered of RENDERED) {
      const sysctl = fileOf(stepOf(rendered, "preflight"), "/etc/sysctl.d/99-nodeforge-kubernetes.conf");
      assert.equal(sysctl.includes("net.ipv6.conf.all.forwarding = 1"), rendered.variant === "ipv6", label(rendered));
      assert.match(sysctl, /^net\.ipv4\.ip_forward = 1$/m);
    }
  });
});

describe("install-containerd installs the pinned containerd and runc releases from the configured base URLs", () => {
  for (const rendered of RENDERED) {
    it(label(rendered), () => {
      const { stack, machine } = rendered;
      const release = DEFAULT_PINS.kubernetes[stack.cluster.kubernetesVersion];
      assert.ok(release);
      const mirrored = rendered.variant === "ipv4";
      const containerdBase = mirrored
        ? MIRROR_CONTAINERD_BASE
        : "https://github.com/containerd/containerd/releases/download";
      const runcBase = mirrored ? MIRROR_RUNC_BASE : "https://github.com/opencontainers/runc/releases/download";
      const version = release.containerdVersion;
      const sha = DEFAULT_PINS.containerd[version]?.[machine.arch];
      assert.match(sha ?? "", /^[0-9a-f]{64}$/);
      const runc = DEFAULT_PINS.runc;
      const step = stepOf(rendered, "install-containerd");
      const lines = step.script.split("\n").map((line) => line.trim());
      const words = (...values: string[]) => values.map(shellQuote).join(" ");
      const url = `${containerdBase}/v${version}/containerd-${version}-linux-${machine.arch}.tar.gz`;
      assert.ok(lines.includes(`nf_fetch ${words(url, sha ?? "", "/var/lib/nodeforge/containerd.tar.gz")}`));
      const runcUrl = `${runcBase}/v${runc.version}/runc.${machine.arch}`;
      assert.ok(
        lines.includes(`nf_install_binary ${words(runcUrl, runc.sha256[machine.arch], "/usr/local/sbin/runc")}`),
      );
      // The unit runs the release's containerd where the script puts it.
      assert.match(fileOf(step, CONTAINERD_UNIT), /^ExecStart=\/usr\/local\/bin\/containerd$/m);
      assert.ok(step.deleteScript?.includes("/var/lib/nodeforge/containerd.installed"));
    });
  }
});

describe("install-kubelet downloads pinned artifacts from the configured base URLs", () => {
  for (const rendered of RENDERED) {
    it(label(rendered), () => {
      const { stack, machine } = rendered;
      const version = stack.cluster.kubernetesVersion;
      const release = DEFAULT_PINS.kubernetes[version];
      assert.ok(release);
      const k8sBase = rendered.variant === "ipv4" ? MIRROR_K8S_BASE : UPSTREAM_K8S_BASE;
      const crictlBase = rendered.variant === "ipv4" ? MIRROR_CRICTL_BASE : UPSTREAM_CRICTL_BASE;
      const step = stepOf(rendered, "install-kubelet");
      const lines = step.script.split("\n").map((line) => line.trim());
      const words = (...values: string[]) => values.map(shellQuote).join(" ");

      // The kubelet twice: straight in place on a new machine, staged beside the running one on a joined machine.
      assert.equal(lines.filter((line) => line.startsWith("nf_install_binary ")).length, 4);
      const kubeletUrl = `${k8sBase}/v${version}/bin/linux/${machine.arch}/kubelet`;
      const kubeletSha = release.binaries[machine.arch].kubelet;
      assert.ok(
        lines.includes(
          `nf_install_binary ${words(kubeletUrl, kubeletSha, "/usr/local/bin/kubelet.nodeforge-upgrade")}`,
        ),
      );
      assert.ok(step.deleteScript?.includes("/usr/local/bin/kubelet.nodeforge-upgrade"), "a staged kubelet removed");
      for (const name of ["kubelet", "kubeadm", "kubectl"] as const) {
        const url = `${k8sBase}/v${version}/bin/linux/${machine.arch}/${name}`;
        const sha = release.binaries[machine.arch][name];
        assert.match(sha, /^[0-9a-f]{64}$/);
        assert.ok(lines.includes(`nf_install_binary ${words(url, sha, `/usr/local/bin/${name}`)}`), `${name} line`);
        assert.ok(step.deleteScript?.includes(`/usr/local/bin/${name}`), `${name} removed on destroy`);
      }
      const crictlVersion = release.crictlVersion;
      const crictlSha = DEFAULT_PINS.crictl[crictlVersion]?.[machine.arch];
      assert.ok(crictlSha);
      const crictlUrl = `${crictlBase}/v${crictlVersion}/crictl-v${crictlVersion}-linux-${machine.arch}.tar.gz`;
      assert.ok(lines.includes(`nf_fetch ${words(crictlUrl, crictlSha, "/var/lib/nodeforge/crictl.tar.gz")}`));
      assert.ok(step.deleteScript?.includes("/usr/local/bin/crictl"));
    });
  }

  it("a mirror in the stack's artifacts replaces the upstream URLs, checksums unchanged", () => {
    const upstream = renderStack("upstream", ipv4StackYaml({ artifacts: {} }));
    const mirrored = renderStack("mirrored", ipv4StackYaml());
    const scriptOf = (list: RenderedMachine[], name: string) => {
      const rendered = list.find((r) => r.machine.name === name);
      assert.ok(rendered);
      return stepOf(rendered, "install-kubelet").script;
    };
    const a = scriptOf(upstream, "debian-12-amd64");
    const b = scriptOf(mirrored, "debian-12-amd64");
    const sha = DEFAULT_PINS.kubernetes["1.36.4"]?.binaries.amd64.kubelet as string;
    assert.ok(a.includes(`nf_install_binary https://dl.k8s.io/release/v1.36.4/bin/linux/amd64/kubelet ${sha} `));
    assert.ok(
      b.includes(
        `nf_install_binary http://mirror.example.internal:8080/k8s/release/v1.36.4/bin/linux/amd64/kubelet ${sha} `,
      ),
    );
    assert.ok(a.includes(`${UPSTREAM_CRICTL_BASE}/v1.36.0/crictl-v1.36.0-linux-amd64.tar.gz`));
    assert.ok(b.includes("http://mirror.example.internal:8080/cri-tools/v1.36.0/crictl-v1.36.0-linux-amd64.tar.gz"));
    assert.doesNotMatch(b, /dl\.k8s\.io|github\.com/);
  });
});

describe("nf_install_binary, run for real against a local HTTP server", () => {
  const payload = "#!/bin/sh\necho 'kubelet test double'\n";
  const payloadSha = createHash("sha256").update(payload).digest("hex");
  const wrongSha = "f".repeat(64);
  let server: Server;
  let base = "";
  let hits = 0;
  const [rendered] = RENDERED;
  assert.ok(rendered);
  const machine = rendered.machine.name;

  before(async () => {
    server = createServer((request, response) => {
      hits++;
      if (request.url === "/v1/kubelet") response.end(payload);
      else response.writeHead(404).end("not found\n");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /**
   * The rendered script's variables and function definitions, then one call of nf_install_binary. The
   * script's top-level commands (which write to /usr/local/bin) are left out.
   */
  function program(): string {
    const script = stepOf(rendered as RenderedMachine, "install-kubelet").script;
    const assignments = script.match(/^nf_(machine|step|state)=.*$/gm) ?? [];
    const functions = script.match(/^[a-z_]+\(\) \{\n[\s\S]*?\n\}$/gm) ?? [];
    const names = functions.map((f) => f.slice(0, f.indexOf("(")));
    assert.ok(
      names.includes("nf_fetch") && names.includes("nf_install_binary") && names.includes("nf_fail"),
      String(names),
    );
    return ["set -eu", ...assignments, ...functions, 'nf_install_binary "$@"', ""].join("\n");
  }

  async function install(url: string, sha: string, dest: string) {
    const dir = mkdtempSync(join(TMP, "install-prog-"));
    writeFileSync(join(dir, "install.sh"), program());
    // The download must reach 127.0.0.1 directly, whatever proxy this host's environment names.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/_proxy$/i.test(k)));
    return runProcess("dash", [join(dir, "install.sh"), url, sha, dest], { env });
  }

  it("installs a verified download with mode 0755 and leaves nothing else behind", async () => {
    const dir = mkdtempSync(join(TMP, "bin-"));
    const dest = join(dir, "kubelet");
    const result = await install(`${base}/v1/kubelet`, payloadSha, dest);
    assert.deepEqual(result, { code: 0, stdout: "", stderr: "" });
    assert.equal(readFileSync(dest, "utf8"), payload);
    assert.equal(statSync(dest).mode & 0o777, 0o755);
    assert.deepEqual(readdirSync(dir), ["kubelet"]);

    // Run twice: a binary that already matches its checksum is not downloaded again.
    const hitsBefore = hits;
    assert.equal((await install(`${base}/v1/kubelet`, payloadSha, dest)).code, 0);
    assert.equal(hits, hitsBefore);
  });

  it("refuses a download whose sha256 is not the pinned one, naming machine, step and both checksums", async () => {
    const dir = mkdtempSync(join(TMP, "bin-"));
    const url = `${base}/v1/kubelet`;
    const result = await install(url, wrongSha, join(dir, "kubelet"));
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      `${machine}: install-kubelet: sha256 mismatch for ${url}: expected ${wrongSha}, got ${payloadSha}\n`,
    );
    assert.deepEqual(readdirSync(dir), [], "no binary and no .nodeforge-download left");
  });

  it("keeps the binary already installed when the new download does not verify", async () => {
    const dir = mkdtempSync(join(TMP, "bin-"));
    const dest = join(dir, "kubelet");
    writeFileSync(dest, "old kubelet\n", { mode: 0o755 });
    const result = await install(`${base}/v1/kubelet`, wrongSha, dest);
    assert.equal(result.code, 1);
    assert.equal(readFileSync(dest, "utf8"), "old kubelet\n");
    assert.deepEqual(readdirSync(dir), ["kubelet"]);
  });

  it("reports a failed download with curl's exit code and leaves nothing behind", async () => {
    const dir = mkdtempSync(join(TMP, "bin-"));
    const url = `${base}/v1/missing`;
    const result = await install(url, payloadSha, join(dir, "kubelet"));
    assert.equal(result.code, 1);
    // curl -S says why first; nodeforge's own line names machine, step, URL and curl's exit code.
    const [curlLine, ownLine, ...rest] = result.stderr.split("\n");
    assert.match(curlLine as string, /^curl: \(22\) .*404/);
    assert.equal(ownLine, `${machine}: install-kubelet: download of ${url} failed (curl exit 22)`);
    assert.deepEqual(rest, [""]);
    assert.deepEqual(readdirSync(dir), []);
  });
});

describe("strict rendering", () => {
  /** Every template under templates/, as the name render() takes. */
  function templateNames(dir = join(projectRoot(), "templates")): string[] {
    return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory()
        ? templateNames(join(dir, entry.name))
        : [relative(join(projectRoot(), "templates"), join(dir, entry.name))],
    );
  }

  it("every template that uses a value refuses to render without it, naming the template", () => {
    const names = templateNames();
    assert.ok(names.includes("scripts/install-kubelet.sh.hbs") && names.includes("partials/prelude.sh.hbs"));
    for (const name of names) {
      const source = readFileSync(join(projectRoot(), "templates", name), "utf8");
      if (!/\{\{(?!!)/.test(source)) continue;
      assert.throws(
        () => render(name, {}),
        (error: Error) => error.message.startsWith(`template ${name}: `),
        name,
      );
    }
  });

  /** Renders with every value, then once without each of them: each omission must fail, naming the value. */
  function assertEachValueRequired(name: string, values: Record<string, unknown>): void {
    assert.doesNotThrow(() => render(name, values), `${name} renders with all values`);
    for (const key of Object.keys(values)) {
      const without = Object.fromEntries(Object.entries(values).filter(([k]) => k !== key));
      assert.throws(
        () => render(name, without),
        (error: Error) => {
          assert.ok(error.message.startsWith(`template ${name}: `), error.message);
          assert.ok(error.message.includes(`"${key}" not defined`), error.message);
          return true;
        },
      );
    }
  }

  it("values used only through helpers or blocks ({{#each}}, {{json}}, {{unitword}}, {{sh}}) are required too", () => {
    assertEachValueRequired("containerd/hosts.toml.hbs", {
      registry: "docker.io",
      server: "https://registry-1.docker.io",
      mirrors: ["https://mirror.example.internal"],
    });
    assertEachValueRequired("containerd/crictl.yaml.hbs", { criEndpoint: "unix:///run/containerd/containerd.sock" });
    assertEachValueRequired("kubelet/kubelet.service.hbs", {
      baseConfig: "/var/lib/kubelet/config.yaml",
      envFile: "/etc/kubernetes/nodeforge-kubelet.env",
      kubeletPath: "/usr/local/bin/kubelet",
      configDir: "/etc/kubernetes/kubelet.conf.d",
    });
    // machine, step, stateDir and binDir are used by the prelude partial.
    assertEachValueRequired("scripts/uninstall-kubelet.sh.hbs", {
      machine: "cp-1",
      step: "install-kubelet",
      stateDir: "/var/lib/nodeforge",
      binDir: "/usr/local/bin",
      binaries: [{ dest: "/usr/local/bin/kubelet", staged: "/usr/local/bin/kubelet.nodeforge-upgrade" }],
      crictlDest: "/usr/local/bin/crictl",
      cniBinDir: "/opt/cni/bin",
      cniBinParent: "/opt/cni",
      cniInstalledList: "/var/lib/nodeforge/cni-plugins.installed",
    });
  });
});
