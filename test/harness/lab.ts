/**
 * `npm run lab`: three systemd-nspawn machines (cp-1, worker-1, worker-2) on this Linux computer, kept running in
 * the background, and a ready stack file stacks/lab.yaml for `pulumi up -s lab`. `npm run lab -- --vms`: cp-1, and
 * this computer as a hypervisor (a loopback sshd, a private libvirtd, vm-host.ts) whose two VMs (vm-1, vm-2) the
 * stack makes and joins as workers. `npm run lab -- down` stops them and removes everything they used. Needs root,
 * systemd-nspawn and debootstrap (the first start builds a Debian rootfs, a minute or two; with --vms also the VM
 * image, a few minutes).
 */
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../../modules/project-root";
import { shellWords } from "../../modules/render/shell";
import { KUBERNETES_BUILD_VERSION } from "./kubernetes-build";
import { serveRealArtifacts } from "./lab-artifacts";
import { labClusterYaml, labStackYaml, setLabSiteNetwork } from "./lab-stack";
import { startMachines } from "./machines";
import { HYPERVISOR_KEY_CONFIG, startVmHost } from "./vm-host";
import { hostArch, isAlive } from "./rootfs";

/** The version .ci/install-kubernetes builds: with that build, the lab's mirror serves the real kubelet. */
const KUBERNETES_VERSION = KUBERNETES_BUILD_VERSION;
const NAMES = ["cp-1", "worker-1", "worker-2"];
const root = projectRoot();
const labDir = join(root, ".lab");
const stateFile = join(labDir, "state.json");
const logFile = join(labDir, "lab.log");
const keyFile = join(labDir, "id_ed25519");
const hypervisorKeyFile = join(labDir, "hypervisor_ed25519");
const VMS = [{ name: "vm-1" }, { name: "vm-2" }];
const stackFile = join(root, "stacks", "lab.yaml");

interface LabState {
  pid: number;
  stackFile: string;
  keyFile: string;
  ssh: string;
}

function readState(): LabState | undefined {
  if (!existsSync(stateFile)) return undefined;
  const state = JSON.parse(readFileSync(stateFile, "utf8")) as LabState;
  return isAlive(state.pid) ? state : undefined;
}

/**
 * With the Pulumi CLI present: the `lab` stack on the local file backend, its stack file, and the SSH key as its
 * secret. They live in Pulumi.lab.yaml, which is the lab's own and not in the repository: a lab key, however
 * short-lived and encrypted, never lands in a commit.
 */
function configurePulumi(log: (line: string) => void): void {
  const env = {
    ...process.env,
    PULUMI_BACKEND_URL: process.env.PULUMI_BACKEND_URL ?? `file://${join(root, ".pulumi-state")}`,
    PULUMI_CONFIG_PASSPHRASE: process.env.PULUMI_CONFIG_PASSPHRASE ?? "",
  };
  if (spawnSync("pulumi", ["version"], { env }).status !== 0) {
    log(
      "no Pulumi CLI here; before pulumi up run: pulumi stack select --create lab && " +
        `pulumi config set -s lab stackFile stacks/lab.yaml && pulumi config set --secret -s lab sshPrivateKey < ${keyFile}`,
    );
    return;
  }
  mkdirSync(join(root, ".pulumi-state"), { recursive: true });
  const run = (args: string[], input?: string) =>
    spawnSync("pulumi", args, { cwd: root, env, input, encoding: "utf8", stdio: ["pipe", "inherit", "inherit"] });
  run(["stack", "select", "--create", "lab"]);
  run(["config", "set", "-s", "lab", "stackFile", "stacks/lab.yaml"]);
  // The key travels on stdin: never on a command line.
  run(["config", "set", "--secret", "-s", "lab", "sshPrivateKey"], readFileSync(keyFile, "utf8"));
  if (existsSync(hypervisorKeyFile)) {
    run(["config", "set", "--secret", "-s", "lab", HYPERVISOR_KEY_CONFIG], readFileSync(hypervisorKeyFile, "utf8"));
  }
}

/** The background process: starts the machines, writes the stack file, then stays until SIGTERM. */
async function serve(): Promise<void> {
  const log = (line: string) => console.log(line);
  const withVms = process.argv.includes("--vms");
  const names = withVms ? ["cp-1"] : NAMES;
  const lab = await startMachines(names.length, { names, log, imageRegistry: true });
  await setLabSiteNetwork(lab);
  const host = withVms ? await startVmHost(lab) : undefined;
  rmSync(hypervisorKeyFile, { force: true });
  if (host) writeFileSync(hypervisorKeyFile, host.secrets[HYPERVISOR_KEY_CONFIG]!, { mode: 0o600 });
  const arch = await hostArch();
  const { missing, served } = await serveRealArtifacts(
    lab.artifacts,
    KUBERNETES_VERSION,
    arch === "arm64" ? "arm64" : "amd64",
    log,
  );
  writeFileSync(keyFile, lab.clientPrivateKey, { mode: 0o600 });
  writeFileSync(
    stackFile,
    labStackYaml(lab, {
      kubernetesVersion: KUBERNETES_VERSION,
      extra: labClusterYaml(lab),
      arch,
      checksums: served,
      comments: [
        "Written by `npm run lab` for the machines it started; rewritten on every start.",
        ...(missing.length > 0
          ? ["artifacts.sha256: what the lab's mirror serves: its own builds, test doubles for the rest."]
          : []),
      ],
    }) + (host ? `${host.yaml(VMS)}\n` : ""),
  );
  configurePulumi(log);
  const first = lab.machines[0];
  const state: LabState = {
    pid: process.pid,
    stackFile,
    keyFile,
    ssh: first ? `ssh ${shellWords(lab.sshArgs(first))}` : "",
  };
  if (missing.length > 0) {
    log(
      `lab: ${missing.length} upstream release file(s) could not be had: the mirror serves the lab's own builds ` +
        "or test doubles instead (their checksums are in the stack file)",
    );
  }
  process.on("exit", () => {
    rmSync(stateFile, { force: true });
    rmSync(keyFile, { force: true });
    rmSync(hypervisorKeyFile, { force: true });
  });
  writeFileSync(stateFile, JSON.stringify(state, null, 2));
  log("lab: ready");
  // Keeps the process alive; the harness's signal handlers stop the machines and exit.
  setInterval(() => undefined, 1 << 30);
}

async function up(): Promise<number> {
  const running = readState();
  if (running) {
    console.log(`lab: already running (pid ${running.pid}); stack file ${running.stackFile}`);
    return 0;
  }
  mkdirSync(labDir, { recursive: true, mode: 0o700 });
  rmSync(stateFile, { force: true });
  const out = openSync(logFile, "w", 0o600);
  const args = [__filename, "serve", ...(process.argv.includes("--vms") ? ["--vms"] : [])];
  const child = spawn(process.execPath, args, { detached: true, stdio: ["ignore", out, out] });
  closeSync(out);
  child.unref();
  console.log(`lab: starting (log: ${logFile}; the first start builds a Debian rootfs)`);
  for (let waited = 0; waited < 900; waited++) {
    const state = readState();
    if (state) {
      console.log(readFileSync(logFile, "utf8"));
      console.log(`lab: up. Stack file: ${state.stackFile}\nlab: ${state.ssh}`);
      return 0;
    }
    if (child.pid === undefined || !isAlive(child.pid)) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  console.error(`lab: did not start:\n${readFileSync(logFile, "utf8")}`);
  if (child.pid !== undefined && isAlive(child.pid)) process.kill(child.pid, "SIGTERM");
  return 1;
}

async function down(): Promise<number> {
  const state = readState();
  if (!state) {
    console.log("lab: not running");
    return 0;
  }
  process.kill(state.pid, "SIGTERM");
  for (let waited = 0; waited < 120 && isAlive(state.pid); waited++) await new Promise((r) => setTimeout(r, 500));
  if (isAlive(state.pid)) {
    console.error(`lab: pid ${state.pid} did not stop; see ${logFile}`);
    return 1;
  }
  console.log("lab: stopped; machines, namespaces and the bridge are gone");
  return 0;
}

const command = process.argv.slice(2).find((arg) => !arg.startsWith("--")) ?? "up";
const actions: Record<string, () => Promise<number | void>> = { up, down, serve };
const action = actions[command];
if (!action) {
  console.error("usage: npm run lab [-- up [--vms]|down]");
  process.exit(64);
}
action().then(
  (code) => {
    if (typeof code === "number") process.exitCode = code;
  },
  (error: Error) => {
    console.error(`lab: ${error.message}`);
    process.exit(1);
  },
);
