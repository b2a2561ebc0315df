/**
 * Real systemd machines for integration tests and the local lab: N Debian 12 systemd-nspawn containers booted in
 * parallel, each in its own network namespace on a bridge this harness creates (see network.ts), each running sshd
 * with a fresh host key and an authorized client key. No internet: apt reads only the local repository
 * (apt-mirror.ts) and release downloads come from the local artifact mirror (artifact-mirror.ts), both served
 * from the host side of the bridge.
 *
 * Everything started is stopped by its own PID, and every copy, mount, cgroup, namespace, veth and bridge removed
 * by stop(); also, through process handlers, when the process ends or is interrupted (SIGINT, SIGTERM, SIGHUP).
 * Leftovers of a run that was killed outright (SIGKILL) are swept at the next start.
 *
 * Run as a program it is the lab: `node build/test/harness/machines.js [count]` boots machines and keeps them
 * until Ctrl-C.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  closeSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { after, before } from "node:test";
import { shellWords } from "../../modules/render/shell";
import { readSshBanner } from "./ssh-banner";
import type { SshTarget } from "../../modules/remote/types";
import { ensureAptRepository, MIRROR_PACKAGES, serveAptRepository, sourcesListLine } from "./apt-mirror";
import { startArtifactMirror, type ArtifactMirror, type StaticServer } from "./artifact-mirror";
import { pushClusterImages } from "./cluster-images";
import { servedBuilds } from "./kubernetes-build";
import { startImageRegistry, type ImageRegistry } from "./image-registry";
import { createNetwork, destroyNetworkSync, sweepStaleNetworks, type LabNetwork, type MachineLink } from "./network";
import {
  abortAllSync,
  ensureRootfs,
  execChecked,
  execProgram,
  hostArch,
  isAlive,
  removeTree,
  removeTreeSync,
  type ExecResult,
} from "./rootfs";

export type RootfsMode = "overlay" | "copy";

export interface MachineOptions {
  /** Host names of the machines (default `node-1` ... `node-N`). */
  names?: string[];
  /**
   * How each machine gets its own writable root: an overlay over the cached rootfs (default: milliseconds), or a
   * full `cp -a --reflink=auto` copy (1-9 s per machine measured on ext4; quick only with reflinks: btrfs, xfs).
   */
  rootfsMode?: RootfsMode;
  /** Per machine, from start to `running` and sshd answering (default 60 s). */
  bootTimeoutMs?: number;
  /** Orderly shutdown time before SIGKILL (default 15 s). */
  stopTimeoutMs?: number;
  /**
   * Also run the lab's image registry on the bridge (image-registry.ts) with a kubeadm control plane's images in
   * it (cluster-images.ts), for stacks that mirror registry.k8s.io to it.
   */
  imageRegistry?: boolean;
  /**
   * With `imageRegistry`: the Kubernetes versions whose control-plane images it holds (default the lab's build;
   * the upgrade test's lab holds the previous minor's too).
   */
  kubernetesVersions?: string[];
  /** Progress lines (timings); default: none. */
  log?: (line: string) => void;
  /** Debian packages the local apt repository serves besides MIRROR_PACKAGES (e.g. a test's own), with dependencies. */
  extraPackages?: string[];
}

export interface RunOptions {
  input?: string | Buffer;
  timeoutMs?: number;
}

export interface Machine {
  name: string;
  address: string;
  /** The sshd host key generated for this machine before boot, `<type> <base64>`: pin it. */
  hostKey: string;
  netns: string;
  /** systemd-nspawn's pid. */
  pid: number;
  /** Host pid of the machine's PID 1 (systemd). */
  leaderPid: number;
  /** Units that had failed when the machine reached running/degraded. */
  failedUnitsAtBoot: string[];
  /** Milliseconds: making the writable root, and from nspawn start to running + sshd answering. */
  timings: { prepareMs: number; bootMs: number };
  /** Runs `/bin/sh -c command` as root inside the machine (all its namespaces), with a clean environment. */
  run(command: string, options?: RunOptions): Promise<ExecResult>;
  /** Copies a host file to a path inside the machine. */
  copyIn(hostPath: string, machinePath: string, mode?: number): void;
  /** `journalctl --no-pager` inside the machine with these extra arguments (e.g. ["-u", "containerd"]). */
  journal(args?: string[]): Promise<string>;
  /** What the machine printed on its console (systemd's boot and shutdown messages). */
  consoleLog(): string;
}

export interface Lab {
  machines: Machine[];
  network: LabNetwork;
  /** OpenSSH private key text authorized for root on every machine. */
  clientPrivateKey: string;
  clientPublicKey: string;
  /** The private key as a file (mode 0600) and a known_hosts file pinning every machine's host key. */
  clientKeyPath: string;
  knownHostsPath: string;
  /** Base URL of the local apt repository (each machine's only apt source). */
  mirrorUrl: string;
  /** Kubernetes release tree (`artifacts.kubernetesBaseUrl`), cri-tools and CNI plugins bases of the artifact mirror. */
  artifactBaseUrl: string;
  crictlBaseUrl: string;
  cniPluginsBaseUrl: string;
  /** The artifact mirror: test-double pins, tampering. */
  artifacts: ArtifactMirror;
  aptServer: StaticServer;
  /** With `imageRegistry`: the registry, holding the control plane's images under registry.k8s.io's names. */
  registry?: ImageRegistry;
  /** Seconds spent on the cached rootfs and apt repository (large only when this run built them). */
  timings: { rootfsSeconds: number; rootfsBuilt: boolean; aptSeconds: number; aptBuilt: boolean; bootAllMs: number };
  /** `ssh` arguments that log in as root on the machine with the pinned host key (append a command). */
  sshArgs(machine: Machine): string[];
  /** nodeforge's SshTarget for the machine: root, pinned host key, the client key. */
  target(machine: Machine, overrides?: Partial<SshTarget>): SshTarget;
  /** Idempotent; also run by the process's exit and signal handlers when a test never gets to call it. */
  stop(): Promise<void>;
}

/** The run's directory: machine roots, console logs, client key. On the rootfs cache's file system (reflinks). */
const RUN_DIR_PARENT = "/var/tmp";
const RUN_DIR_PREFIX = "nodeforge-lab-";
const CGROUP_PREFIX = "nodeforge-lab-";
/** nspawn's machine names (also in its command line): `nf<pid>m<i>`, so a sweep can tell whose they are. */
const NSPAWN_NAME = /^nf([0-9]+)m[0-9]+$/;
const MACHINE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Kernel modules nodeforge's preflight needs, with their path in modules.builtin when built into the kernel. */
const KERNEL_MODULES: Record<string, { present: () => boolean; builtinPath: string }> = {
  overlay: {
    present: () => /\toverlay\n/.test(readFileSync("/proc/filesystems", "utf8")),
    builtinPath: "kernel/fs/overlayfs/overlay.ko",
  },
  br_netfilter: {
    present: () => existsSync("/proc/sys/net/bridge/bridge-nf-call-iptables"),
    builtinPath: "kernel/net/bridge/br_netfilter.ko",
  },
};

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** True while the process exists and is not a zombie (this host's PID 1 may reap orphans late). */
function isRunning(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !["Z", "X"].includes(stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3));
  } catch {
    return false;
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

function requireHost(): void {
  if (process.getuid?.() !== 0) throw new Error("machines: the test machines need root (nspawn, namespaces, mounts)");
  const path = (process.env.PATH ?? "").split(":");
  const tools: Record<string, string> = {
    "systemd-nspawn": "systemd-container",
    debootstrap: "debootstrap",
    ip: "iproute2",
    nsenter: "util-linux",
    "ssh-keygen": "openssh-client",
    ssh: "openssh-client",
    "dpkg-scanpackages": "dpkg-dev",
    "apt-get": "apt",
    tar: "tar",
  };
  const missing = Object.entries(tools).filter(([tool]) => !path.some((dir) => existsSync(join(dir, tool))));
  if (missing.length > 0) {
    throw new Error(`machines: missing ${missing.map(([tool, pkg]) => `${tool} (apt package ${pkg})`).join(", ")}`);
  }
}

interface KernelView {
  kernelRelease: string;
  /** The host's module tree, bind-mounted read-only into each machine when the host has one. */
  modulesDir?: string;
  /** Otherwise (a kernel without modules): modules.builtin entries for the features the host has built in. */
  builtin: string[];
}

/**
 * The machines cannot load kernel modules, so the host provides overlay and br_netfilter (modprobe when they are
 * modules) before any machine starts. nodeforge's preflight then runs modprobe inside the machine, which needs a
 * module index: the host's own tree when it has one, else a modules.builtin index saying they are built in.
 */
async function prepareKernel(): Promise<KernelView> {
  const kernelRelease = (await execChecked("uname", ["-r"])).trim();
  for (const [name, module] of Object.entries(KERNEL_MODULES)) {
    if (module.present()) continue;
    const result = await execProgram("modprobe", [name]).catch((error: Error) => ({ code: -1, stderr: error.message }));
    if (result.code !== 0 || !module.present()) {
      throw new Error(
        `machines: kernel feature ${name} is missing and modprobe ${name} failed: ${result.stderr.trim()}`,
      );
    }
  }
  const modulesDir = `/lib/modules/${kernelRelease}`;
  if (existsSync(modulesDir)) return { kernelRelease, modulesDir, builtin: [] };
  return { kernelRelease, builtin: Object.values(KERNEL_MODULES).map((module) => module.builtinPath) };
}

interface CgroupHierarchy {
  mount: string;
  /** This process's cgroup in the hierarchy (relative to the mount). */
  own: string;
}

/** The cgroup hierarchies mounted on this host and where this process sits in each. */
function cgroupHierarchies(): CgroupHierarchy[] {
  const own = new Map<string, string>();
  for (const line of readFileSync("/proc/self/cgroup", "utf8").trim().split("\n")) {
    const [, controllers = "", path = "/"] = line.split(":");
    own.set(controllers, path);
  }
  const hierarchies: CgroupHierarchy[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").trim().split("\n")) {
    const fields = line.split(" ");
    const dash = fields.indexOf("-");
    const fstype = fields[dash + 1];
    const mount = fields[4] ?? "";
    if (fstype === "cgroup2") {
      hierarchies.push({ mount, own: own.get("") ?? "/" });
    } else if (fstype === "cgroup") {
      const options = (fields[dash + 3] ?? "").split(",");
      const key = [...own.keys()].find(
        (controllers) => controllers.split(",").every((c) => options.includes(c)) && controllers,
      );
      if (key) hierarchies.push({ mount, own: own.get(key) ?? "/" });
    }
  }
  return hierarchies;
}

/**
 * One cgroup per machine below this process's own, in every hierarchy. systemd-nspawn --keep-unit puts the
 * machine under its own cgroup (`payload`, `supervisor`): without this, every machine of the run would share
 * them, and on cgroup v1 each machine's systemd and runc would create (and remove) the same cgroup paths.
 */
function createMachineCgroups(tag: string): string[] {
  const dirs: string[] = [];
  for (const { mount, own } of cgroupHierarchies()) {
    const parent = join(mount, own);
    const dir = join(parent, tag);
    if (!existsSync(parent)) continue;
    mkdirSync(dir, { recursive: true });
    // A v1 cpuset cgroup takes no process until it has CPUs and memory nodes.
    for (const file of ["cpuset.cpus", "cpuset.mems"]) {
      if (existsSync(join(dir, file)) && readFileSync(join(dir, file), "utf8").trim() === "") {
        writeFileSync(join(dir, file), readFileSync(join(parent, file), "utf8").trim());
      }
    }
    dirs.push(dir);
  }
  return dirs;
}

/** Removes cgroup directories bottom-up (cgroupfs only removes empty directories; their files are virtual). */
function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeCgroupTree(join(dir, entry.name));
  }
  try {
    rmdirSync(dir);
  } catch {
    // Still has processes: they die with the machine's PID namespace, the directory with the next sweep.
  }
}

/** The machine's PID 1 as the host sees it: nspawn's child that is pid 1 in its own PID namespace. */
function findLeader(nspawnPid: number): number | undefined {
  const children = `/proc/${nspawnPid}/task/${nspawnPid}/children`;
  if (!existsSync(children)) return undefined;
  for (const child of readFileSync(children, "utf8").trim().split(/\s+/).filter(Boolean)) {
    try {
      const nspid =
        /^NSpid:\s+(.*)$/m
          .exec(readFileSync(`/proc/${child}/status`, "utf8"))?.[1]
          ?.trim()
          .split(/\s+/) ?? [];
      if (nspid.length > 1 && nspid[nspid.length - 1] === "1") return Number(child);
    } catch {
      // Gone while we looked.
    }
  }
  return undefined;
}

/** Resolves true once something on address:22 answers with an SSH banner. */
async function sshBanner(address: string): Promise<boolean> {
  return (await readSshBanner(address)).startsWith("SSH-2.0-");
}

async function sshKeygen(file: string, comment: string): Promise<string> {
  await execChecked("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]);
  return readFileSync(`${file}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
}

interface MachineState {
  name: string;
  nspawnName: string;
  link: MachineLink;
  dir: string;
  root: string;
  cgroups: string[];
  child?: ChildProcess;
  pid: number;
  leaderPid: number;
}

/** Makes the machine's writable root at `state.root`: an overlay over the cached rootfs, or a copy of it. */
async function prepareRoot(state: MachineState, rootfs: string, mode: RootfsMode): Promise<void> {
  if (mode === "copy") {
    await execChecked("cp", ["-a", "--reflink=auto", rootfs, state.root]);
    return;
  }
  for (const dir of ["root", "upper", "work", "containerd"]) mkdirSync(join(state.dir, dir));
  const options = `lowerdir=${rootfs},upperdir=${join(state.dir, "upper")},workdir=${join(state.dir, "work")}`;
  await execChecked("mount", ["-t", "overlay", "overlay", "-o", options, state.root]);
}

interface Personalization {
  hostsFile: string;
  clientPublicKey: string;
  mirrorUrl: string;
  kernel: KernelView;
}

/** Writes what makes a clone this machine: name, machine id, host key, authorized key, apt source. */
async function personalize(state: MachineState, p: Personalization): Promise<string> {
  const root = state.root;
  const write = (path: string, content: string, mode: number): void => {
    const file = join(root, path);
    mkdirSync(join(file, ".."), { recursive: true });
    writeFileSync(file, content);
    chmodSync(file, mode);
  };
  write("etc/hostname", `${state.name}\n`, 0o644);
  write("etc/hosts", p.hostsFile, 0o644);
  write("etc/machine-id", `${randomBytes(16).toString("hex")}\n`, 0o444);
  write("etc/apt/sources.list", sourcesListLine(p.mirrorUrl), 0o644);
  mkdirSync(join(root, "root/.ssh"), { recursive: true, mode: 0o700 });
  write("root/.ssh/authorized_keys", `${p.clientPublicKey}\n`, 0o600);
  const hostKey = await sshKeygen(join(root, "etc/ssh/ssh_host_ed25519_key"), `root@${state.name}`);
  const { builtin, kernelRelease } = p.kernel;
  if (builtin.length > 0) {
    write(`lib/modules/${kernelRelease}/modules.builtin`, builtin.map((path) => `${path}\n`).join(""), 0o644);
    await execChecked("chroot", [root, "depmod", kernelRelease]);
  }
  return hostKey;
}

function nspawnArgs(state: MachineState, mode: RootfsMode, kernel: KernelView): string[] {
  const args = [
    "-b",
    "-D",
    state.root,
    // Nothing to register with: this host may not even run systemd as PID 1.
    "--register=no",
    "--keep-unit",
    "--capability=all",
    // The kubelet reads the kernel log (OOM events).
    "--bind=/dev/kmsg",
    `--network-namespace-path=${state.link.nsPath}`,
    `--machine=${state.nspawnName}`,
    `--hostname=${state.name}`,
    // The machine's resolv.conf says "no DNS" (rootfs.ts): do not replace it with the host's.
    "--resolv-conf=off",
    "--timezone=off",
    "--console=read-only",
  ];
  // containerd's overlayfs snapshotter cannot put an overlay upper directory on an overlay: give it a real one.
  if (mode === "overlay") args.push(`--bind=${join(state.dir, "containerd")}:/var/lib/containerd`);
  if (kernel.modulesDir) args.push(`--bind-ro=${kernel.modulesDir}`);
  return args;
}

/** Starts nspawn inside the machine's own cgroups (a tiny sh moves itself there, then execs nspawn). */
function startNspawn(state: MachineState, args: string[]): void {
  const consoleFd = openSync(join(state.dir, "console.log"), "a");
  const script = 'while [ "$1" != -- ]; do echo $$ > "$1/cgroup.procs" || exit 97; shift; done; shift; exec "$@"';
  const child = spawn("/bin/sh", ["-c", script, "sh", ...state.cgroups, "--", "systemd-nspawn", ...args], {
    // Its own process group: a Ctrl-C in the terminal reaches only this process, which stops machines in order.
    detached: true,
    stdio: ["ignore", consoleFd, consoleFd],
    env: { ...process.env, SYSTEMD_SECCOMP: "0", SYSTEMD_NSPAWN_API_VFS_WRITABLE: "1" },
  });
  closeSync(consoleFd);
  child.on("error", () => undefined);
  state.child = child;
  state.pid = child.pid ?? 0;
}

function runInMachine(state: MachineState, command: string, options: RunOptions = {}): Promise<ExecResult> {
  const env = [
    "env",
    "-i",
    `PATH=${MACHINE_PATH}`,
    "HOME=/root",
    "LANG=C.UTF-8",
    "TERM=dumb",
    "DEBIAN_FRONTEND=noninteractive",
  ];
  return execProgram("nsenter", ["-t", String(state.leaderPid), "-a", "--", ...env, "/bin/sh", "-c", command], {
    input: options.input ?? "",
    timeoutMs: options.timeoutMs ?? 300_000,
  });
}

function consoleTail(state: MachineState): string {
  try {
    return readFileSync(join(state.dir, "console.log"), "utf8").split("\n").slice(-30).join("\n");
  } catch {
    return "";
  }
}

/** Waits for PID 1, then `systemctl is-system-running` = running or degraded, then sshd's banner. */
async function waitUntilReady(state: MachineState, deadline: number): Promise<string[]> {
  const exited = (): boolean => state.child?.exitCode !== null || state.child?.signalCode !== null;
  const fail = (what: string): Error => new Error(`${state.name}: ${what}\n--- console ---\n${consoleTail(state)}`);
  while (!state.leaderPid) {
    if (exited()) throw fail("systemd-nspawn exited during boot");
    if (Date.now() > deadline) throw fail("no PID 1 appeared");
    state.leaderPid = findLeader(state.pid) ?? 0;
    if (!state.leaderPid) await sleep(20);
  }
  let status = "";
  for (;;) {
    if (exited()) throw fail("systemd-nspawn exited during boot");
    status = (await runInMachine(state, "systemctl is-system-running", { timeoutMs: 10_000 })).stdout.trim();
    if (status === "running" || status === "degraded") break;
    if (Date.now() > deadline) throw fail(`systemctl is-system-running says "${status}" after the boot timeout`);
    await sleep(100);
  }
  const failed = (await runInMachine(state, "systemctl --failed --plain --no-legend | cut -d ' ' -f 1")).stdout
    .split("\n")
    .filter(Boolean);
  while (!(await sshBanner(state.link.address))) {
    if (Date.now() > deadline) throw fail(`sshd does not answer on ${state.link.address}:22`);
    await sleep(100);
  }
  return failed;
}

/** Orderly shutdown (SIGTERM makes nspawn send SIGRTMIN+3, systemd's halt), SIGKILL after the timeout. */
async function stopMachine(state: MachineState, timeoutMs: number): Promise<void> {
  const running = (): boolean => state.pid > 0 && state.child?.exitCode === null && state.child?.signalCode === null;
  if (running()) {
    signal(state.pid, "SIGTERM");
    const deadline = Date.now() + timeoutMs;
    while (running() && Date.now() < deadline) await sleep(50);
    if (running()) {
      // Killing PID 1 ends every process of the machine's PID namespace; nspawn then exits by itself.
      if (state.leaderPid) signal(state.leaderPid, "SIGKILL");
      signal(state.pid, "SIGKILL");
      const killDeadline = Date.now() + 5000;
      while (running() && Date.now() < killDeadline) await sleep(50);
    }
  }
  // An nspawn that died on its own (or was killed) can leave its machine's PID 1 behind, orphaned.
  if (isRunning(state.leaderPid)) {
    signal(state.leaderPid, "SIGKILL");
    const deadline = Date.now() + 5000;
    while (isRunning(state.leaderPid) && Date.now() < deadline) await sleep(50);
  }
  await removeTree(state.dir);
  for (const dir of state.cgroups) removeCgroupTree(dir);
  // nspawn leaves this behind when /run is not a tmpfs ("we can't allow that").
  await removeTree(`/run/systemd/nspawn/propagate/${state.nspawnName}`);
}

function killMachineSync(state: MachineState): void {
  if (state.leaderPid) signal(state.leaderPid, "SIGKILL");
  if (state.pid) signal(state.pid, "SIGKILL");
  for (let i = 0; i < 100 && [state.leaderPid, state.pid].some(isRunning); i += 1) sleepSync(50);
  removeTreeSync(state.dir);
  for (const dir of state.cgroups) removeCgroupTree(dir);
  removeTreeSync(`/run/systemd/nspawn/propagate/${state.nspawnName}`);
}

// ---- process-wide cleanup: every live lab is torn down however this process ends ----

interface LiveLab {
  stop(): Promise<void>;
  stopSync(): void;
}

const liveLabs = new Set<LiveLab>();
const SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
let stopping = false;

function onExit(): void {
  abortAllSync();
  for (const lab of liveLabs) lab.stopSync();
}

function onSignal(sig: NodeJS.Signals): void {
  const code = 128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as Record<string, number>)[sig]!;
  if (stopping) {
    // A second signal: no more waiting for orderly shutdowns.
    onExit();
    process.exit(code);
  }
  stopping = true;
  process.stderr.write(`machines: ${sig}: stopping the test machines\n`);
  // Programs in flight (a debootstrap, an apt-get in a machine) end now; unfinished builds are removed.
  abortAllSync();
  void Promise.allSettled([...liveLabs].map((lab) => lab.stop())).finally(() => process.exit(code));
}

function track(lab: LiveLab): void {
  if (liveLabs.size === 0) {
    process.on("exit", onExit);
    for (const sig of SIGNALS) process.on(sig, onSignal);
  }
  liveLabs.add(lab);
}

function untrack(lab: LiveLab): void {
  liveLabs.delete(lab);
  if (liveLabs.size === 0) {
    // Back to Node's default signal behaviour once nothing needs cleaning up.
    process.off("exit", onExit);
    for (const sig of SIGNALS) process.off(sig, onSignal);
  }
}

/** Removes what runs that were killed outright (SIGKILL) left behind: machines, mounts, cgroups, network. */
async function sweepStaleRuns(): Promise<void> {
  const deadOwner = (pid: string | undefined): boolean => !!pid && !isAlive(Number(pid));
  const killed: number[] = [];
  for (const entry of readdirSync("/proc").filter((e) => /^[0-9]+$/.test(e))) {
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (!argv[0]?.endsWith("systemd-nspawn")) continue;
      const name = argv.find((arg) => arg.startsWith("--machine="))?.slice("--machine=".length) ?? "";
      // Only an nspawn this harness started (its machine name carries the run's pid) whose run has died. Its
      // machine's PID 1 first: killing nspawn alone would leave the machine running, orphaned.
      if (!deadOwner(NSPAWN_NAME.exec(name)?.[1])) continue;
      const leader = findLeader(Number(entry));
      if (leader) signal(leader, "SIGKILL");
      signal(Number(entry), "SIGKILL");
      killed.push(...(leader ? [leader] : []), Number(entry));
    } catch {
      // Gone while we looked.
    }
  }
  const deadline = Date.now() + 5000;
  while (killed.some(isRunning) && Date.now() < deadline) await sleep(50);
  for (const entry of readdirSync(RUN_DIR_PARENT)) {
    if (entry.startsWith(RUN_DIR_PREFIX) && deadOwner(entry.slice(RUN_DIR_PREFIX.length))) {
      await removeTree(join(RUN_DIR_PARENT, entry));
    }
  }
  for (const { mount, own } of cgroupHierarchies()) {
    const parent = join(mount, own);
    if (!existsSync(parent)) continue;
    for (const entry of readdirSync(parent)) {
      if (entry.startsWith(CGROUP_PREFIX) && deadOwner(entry.slice(CGROUP_PREFIX.length).split("-")[0])) {
        removeCgroupTree(join(parent, entry));
      }
    }
  }
  await sweepStaleNetworks();
}

/** Boots `count` machines in parallel and resolves once all are running with sshd answering. */
export async function startMachines(count: number, options: MachineOptions = {}): Promise<Lab> {
  requireHost();
  const log = options.log ?? (() => undefined);
  const mode = options.rootfsMode ?? "overlay";
  const names = options.names ?? Array.from({ length: count }, (_, i) => `node-${i + 1}`);
  if (names.length !== count) throw new Error(`machines: ${count} machines but ${names.length} names`);
  const runDir = join(RUN_DIR_PARENT, `${RUN_DIR_PREFIX}${process.pid}`);
  const states: MachineState[] = [];
  let network: LabNetwork | undefined;
  let aptServer: StaticServer | undefined;
  let artifacts: ArtifactMirror | undefined;
  let registry: ImageRegistry | undefined;
  let stopped: Promise<void> | undefined;
  const stopTimeoutMs = options.stopTimeoutMs ?? 15_000;

  const live: LiveLab = {
    stop: () => {
      stopped ??= (async () => {
        // A machine still being prepared is not waited for: it sees `stopped` before starting nspawn, and fails.
        await Promise.all(states.map((state) => stopMachine(state, stopTimeoutMs)));
        await aptServer?.close();
        await artifacts?.close();
        await registry?.close();
        if (network) destroyNetworkSync(network);
        await removeTree(runDir);
        untrack(live);
      })();
      return stopped;
    },
    stopSync: () => {
      for (const state of states) killMachineSync(state);
      registry?.killSync();
      if (network) destroyNetworkSync(network);
      removeTreeSync(runDir);
    },
  };
  // From here on, however the process ends, what this call started is stopped (builds included).
  track(live);

  try {
    await sweepStaleRuns();
    const kernel = await prepareKernel();
    const rootfs = await ensureRootfs();
    log(`rootfs ${rootfs.path}: ${rootfs.built ? `debootstrap took ${rootfs.seconds.toFixed(1)} s` : "cached"}`);
    const repo = await ensureAptRepository(rootfs, [...MIRROR_PACKAGES, ...(options.extraPackages ?? [])]);
    const aptState = repo.built ? `built in ${repo.seconds.toFixed(1)} s` : "cached";
    log(`apt repository ${repo.path} (${repo.debs.length} packages): ${aptState}`);
    mkdirSync(runDir, { mode: 0o700 });
    network = await createNetwork(count);
    aptServer = await serveAptRepository(repo, network.hostAddress);
    artifacts = await startArtifactMirror(
      network.hostAddress,
      join(runDir, "artifacts"),
      servedBuilds(options.imageRegistry ?? false),
    );
    if (options.imageRegistry) {
      const started = Date.now();
      registry = await startImageRegistry(network.hostAddress, join(runDir, "registry"));
      const arch = (await hostArch()) === "arm64" ? "arm64" : "amd64";
      const pushed = await pushClusterImages(registry, arch, options.kubernetesVersions);
      log(`image registry ${registry.host}: ${pushed.join(", ")} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    const clientKeyPath = join(runDir, "client_key");
    const clientPublicKey = await sshKeygen(clientKeyPath, "nodeforge-test-client");
    const hostsFile =
      "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
      names.map((name, i) => `${network!.links[i]!.address}\t${name}\n`).join("");
    const personalization: Personalization = {
      hostsFile,
      clientPublicKey,
      mirrorUrl: aptServer.url,
      kernel,
    };
    const deadline = Date.now() + (options.bootTimeoutMs ?? 60_000);
    const bootStarted = Date.now();
    const machines = await Promise.all(
      names.map(async (name, i): Promise<Machine> => {
        const dir = join(runDir, name);
        mkdirSync(dir);
        const state: MachineState = {
          name,
          nspawnName: `nf${process.pid}m${i}`,
          link: network!.links[i]!,
          dir,
          root: join(dir, "root"),
          cgroups: [],
          pid: 0,
          leaderPid: 0,
        };
        states.push(state);
        const prepareStarted = Date.now();
        await prepareRoot(state, rootfs.path, mode);
        const hostKey = await personalize(state, personalization);
        const prepareMs = Date.now() - prepareStarted;
        state.cgroups = createMachineCgroups(`${CGROUP_PREFIX}${process.pid}-${name}`);
        const started = Date.now();
        if (stopped) throw new Error(`${name}: stopped before it started`);
        startNspawn(state, nspawnArgs(state, mode, kernel));
        const failedUnitsAtBoot = await waitUntilReady(state, deadline + prepareMs);
        const bootMs = Date.now() - started;
        log(`${name} ${state.link.address}: ${mode} root ${prepareMs} ms, boot to running + sshd ${bootMs} ms`);
        if (failedUnitsAtBoot.length > 0) log(`${name}: failed units: ${failedUnitsAtBoot.join(" ")}`);
        return {
          name,
          address: state.link.address,
          hostKey,
          netns: state.link.netns,
          pid: state.pid,
          leaderPid: state.leaderPid,
          failedUnitsAtBoot,
          timings: { prepareMs, bootMs },
          run: (command, runOptions) => runInMachine(state, command, runOptions),
          copyIn(hostPath, machinePath, fileMode = 0o644) {
            // /proc/<pid>/root is the machine's root as its PID 1 sees it (its own mount namespace).
            const target = join(`/proc/${state.leaderPid}/root`, machinePath);
            copyFileSync(hostPath, target);
            chmodSync(target, fileMode);
          },
          journal: async (args = []) => (await runInMachine(state, `journalctl --no-pager ${shellWords(args)}`)).stdout,
          consoleLog: () => readFileSync(join(dir, "console.log"), "utf8"),
        };
      }),
    );
    const bootAllMs = Date.now() - bootStarted;
    log(`${count} machines running in ${bootAllMs} ms`);
    const knownHostsPath = join(runDir, "known_hosts");
    writeFileSync(knownHostsPath, machines.map((m) => `${m.address} ${m.hostKey}\n`).join(""), { mode: 0o600 });
    const clientPrivateKey = readFileSync(clientKeyPath, "utf8");
    return {
      machines,
      network,
      clientPrivateKey,
      clientPublicKey,
      clientKeyPath,
      knownHostsPath,
      mirrorUrl: aptServer.url,
      artifactBaseUrl: artifacts.kubernetesBaseUrl,
      crictlBaseUrl: artifacts.crictlBaseUrl,
      cniPluginsBaseUrl: artifacts.cniPluginsBaseUrl,
      artifacts,
      aptServer,
      registry,
      timings: {
        rootfsSeconds: rootfs.seconds,
        rootfsBuilt: rootfs.built,
        aptSeconds: repo.seconds,
        aptBuilt: repo.built,
        bootAllMs,
      },
      sshArgs: (machine) => [
        "-i",
        clientKeyPath,
        "-o",
        `UserKnownHostsFile=${knownHostsPath}`,
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=10",
        `root@${machine.address}`,
      ],
      target: (machine, overrides = {}) => ({
        machine: machine.name,
        host: machine.address,
        port: 22,
        user: "root",
        privateKey: clientPrivateKey,
        hostKey: machine.hostKey,
        sudo: false,
        connectTimeoutSeconds: 10,
        ...overrides,
      }),
      stop: live.stop,
    };
  } catch (error) {
    await live.stop();
    throw error;
  }
}

/** For a test file: boots the machines in a before hook, stops them in an after hook; returns a getter. */
export function useMachines(count: number, options: MachineOptions = {}): () => Lab {
  let lab: Lab | undefined;
  before(async () => {
    lab = await startMachines(count, options);
  });
  after(async () => {
    await lab?.stop();
  });
  return () => {
    if (!lab) throw new Error("machines: not started (the before hook failed or has not run)");
    return lab;
  };
}
