/**
 * A private libvirtd for the lab's virtual machines, started by hand (this host's PID 1 is not systemd, so there is
 * no socket activation) and stopped by its own PID.
 *
 * A libvirtd running as root always uses /etc/libvirt, /var/lib/libvirt, /var/cache/libvirt, /run/libvirt and
 * /var/log/libvirt. This one runs in its own mount namespace where those paths are bind mounts of directories in
 * its temp dir (the cache: CACHE_ROOT/libvirt-cache), so its domains, state and qemu configuration collide with nothing (not with a system libvirtd,
 * not with another run). Its socket is in the temp dir too (outside those paths), which is how clients reach it:
 * `qemu:///system?socket=<dir>/sock/libvirt-sock`. On the host only the five directories are created, empty, as
 * mount points.
 *
 * Its qemu driver runs qemu as root with no security driver, no cgroup controllers (this host has cgroup v1 and
 * no systemd) and no namespaces of its own, and writes qemu's stdout/stderr to files itself (stdio_handler
 * "file"), so no virtlogd is needed. Domain type 'qemu' (TCG) works; KVM is neither needed nor used.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CACHE_ROOT, execChecked, execProgram, isAlive, type ExecResult } from "./rootfs";

/** What a private libvirtd offers. */
export interface Libvirt {
  /** Connection URI for virsh -c (and any libvirt client): the private daemon's socket. */
  uri: string;
  /** libvirtd's PID. */
  pid: number;
  /** The daemon's temp dir (its config, state, logs: `log/libvirtd.log`, `log/qemu/<domain>.log`). */
  dir: string;
  /** `virsh -c <uri> <args>`. */
  virsh(args: string[], timeoutMs?: number): Promise<ExecResult>;
  /** Destroys and undefines every domain, stops libvirtd (SIGTERM, then SIGKILL) and removes its temp dir. */
  stop(): Promise<void>;
}

const TEMP_PARENT = "/var/tmp";
const TEMP_PREFIX = "nodeforge-libvirt-";
const LIBVIRTD = "/usr/sbin/libvirtd";
/**
 * /var/cache/libvirt holds only the qemu driver's probe of qemu's capabilities (keyed by the qemu binary, its
 * ctime and libvirt's version; files replaced atomically): shared by every run, it saves each start the probe,
 * several seconds without KVM.
 */
const CAPABILITIES_CACHE = join(CACHE_ROOT, "libvirt-cache");
/** Debian's compiled-in default qemu user and group. */
const QEMU_ACCOUNT = "libvirt-qemu";

/** Bind-mounted inside libvirtd's mount namespace: its temp dir's subdirectory -> the path libvirtd uses. */
const PRIVATE_DIRS: Record<string, string> = {
  etc: "/etc/libvirt",
  lib: "/var/lib/libvirt",
  run: "/run/libvirt",
  log: "/var/log/libvirt",
};

function libvirtdConf(dir: string): string {
  return [
    `unix_sock_dir = "${join(dir, "sock")}"`,
    'unix_sock_ro_perms = "0700"',
    'unix_sock_rw_perms = "0700"',
    'unix_sock_admin_perms = "0700"',
    'auth_unix_ro = "none"',
    'auth_unix_rw = "none"',
    `log_outputs = "3:file:${join(dir, "log", "libvirtd.log")}"`,
    "",
  ].join("\n");
}

const QEMU_CONF = [
  'user = "root"',
  'group = "root"',
  // The image files stay as they are: no chown to the qemu user and back, no ownership xattrs.
  "dynamic_ownership = 0",
  "remember_owner = 0",
  'security_driver = "none"',
  // cgroup v1 without systemd: libvirt would place each qemu in cgroups it cannot manage here.
  "cgroup_controllers = [ ]",
  // No private /dev per qemu process (it would need more mounts inside libvirtd's namespace).
  "namespaces = [ ]",
  // qemu's output goes to /var/log/libvirt/qemu/<domain>.log directly, so no virtlogd is needed.
  'stdio_handler = "file"',
  "",
].join("\n");

/**
 * A privileged libvirtd resolves its compiled-in default qemu user and group (Debian: libvirt-qemu) before it
 * reads qemu.conf, and fails when they do not exist; Debian's libvirt-daemon-system creates them (and starts the
 * system daemon). Where the host lacks them, libvirtd's namespace gets copies of /etc/passwd and /etc/group that
 * add them, so the host's account files stay untouched. Returns the extra binds: file in `dir` -> host path.
 */
function accountOverlays(dir: string): Record<string, string> {
  const binds: Record<string, string> = {};
  for (const [file, line] of [
    ["passwd", `${QEMU_ACCOUNT}:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin`],
    ["group", `${QEMU_ACCOUNT}:x:64055:`],
  ] as const) {
    const host = readFileSync(`/etc/${file}`, "utf8");
    if (host.split("\n").some((entry) => entry.startsWith(`${QEMU_ACCOUNT}:`))) continue;
    writeFileSync(join(dir, file), `${host.trimEnd()}\n${line}\n`);
    binds[join(dir, file)] = `/etc/${file}`;
  }
  return binds;
}

/** The shell libvirtd is exec'ed from, inside its new mount namespace: bind the private directories, then exec. */
function startScript(dir: string): string {
  const binds = [
    ...Object.entries(PRIVATE_DIRS).map(([sub, target]) => [join(dir, sub), target]),
    [CAPABILITIES_CACHE, "/var/cache/libvirt"],
    ...Object.entries(accountOverlays(dir)),
  ].map(([source, target]) => `mount --bind '${source}' '${target}'`);
  return [
    "set -e",
    ...binds,
    `exec ${LIBVIRTD} --config '${join(dir, "libvirtd.conf")}' --pid-file '${join(dir, "libvirtd.pid")}'`,
  ].join("\n");
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

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

/** PIDs of the qemu processes this daemon started that still run (from its pid files, checked against /proc). */
function qemuPids(dir: string): number[] {
  const stateDir = join(dir, "run", "qemu");
  if (!existsSync(stateDir)) return [];
  const pids: number[] = [];
  for (const entry of readdirSync(stateDir).filter((e) => e.endsWith(".pid"))) {
    try {
      const pid = Number(readFileSync(join(stateDir, entry), "utf8").trim());
      const argv0 = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] ?? "";
      if (pid > 0 && argv0.includes("qemu-system") && isRunning(pid)) pids.push(pid);
    } catch {
      // No such process (any more).
    }
  }
  return pids;
}

/** SIGTERM, then SIGKILL after `timeoutMs`; resolves once none of `pids` runs. */
async function terminate(pids: number[], timeoutMs: number): Promise<void> {
  for (const pid of pids) signal(pid, "SIGTERM");
  const deadline = Date.now() + timeoutMs;
  while (pids.some(isRunning) && Date.now() < deadline) await sleep(100);
  for (const pid of pids.filter(isRunning)) signal(pid, "SIGKILL");
  while (pids.some(isRunning)) await sleep(50);
}

/** For exit handlers: kills the daemon's qemu processes and the daemon, and removes its temp dir. */
function killSync(dir: string, libvirtdPid: number): void {
  const pids = [...qemuPids(dir), libvirtdPid];
  for (const pid of pids) signal(pid, "SIGKILL");
  for (let i = 0; i < 100 && pids.some(isRunning); i += 1) sleepSync(50);
  rmSync(dir, { recursive: true, force: true });
}

/** Removes the daemons, qemus and temp dirs of runs that were killed outright (SIGKILL). */
function sweepStale(): void {
  for (const entry of readdirSync(TEMP_PARENT)) {
    if (!entry.startsWith(TEMP_PREFIX)) continue;
    const owner = Number(entry.slice(TEMP_PREFIX.length).split("-")[0]);
    if (owner > 0 && isAlive(owner)) continue;
    const dir = join(TEMP_PARENT, entry);
    let daemon = 0;
    try {
      daemon = Number(readFileSync(join(dir, "libvirtd.pid"), "utf8").trim());
      if (!readFileSync(`/proc/${daemon}/cmdline`, "utf8").includes("libvirtd")) daemon = 0;
    } catch {
      daemon = 0;
    }
    killSync(dir, daemon);
  }
}

const live = new Set<() => void>();
function onExit(): void {
  for (const kill of live) kill();
}

/**
 * Starts a private libvirtd (see the file comment) and resolves once `virsh -c <uri>` answers. Needs root and
 * Debian's libvirt-daemon, libvirt-daemon-driver-qemu, libvirt-clients and qemu-system-x86. Call stop(); if the
 * process exits first (also through a signal handler that calls process.exit), an exit handler SIGKILLs the qemu
 * processes and libvirtd and removes the temp dir; what a SIGKILLed run leaves is swept by the next start.
 */
export async function startLibvirt(): Promise<Libvirt> {
  const missing = missingTools();
  if (missing.length > 0) throw new Error(`libvirt: missing ${missing.join(", ")}`);
  sweepStale();
  for (const target of [...Object.values(PRIVATE_DIRS), "/var/cache/libvirt"]) mkdirSync(target, { recursive: true });
  mkdirSync(CAPABILITIES_CACHE, { recursive: true });
  const dir = mkdtempSync(join(TEMP_PARENT, `${TEMP_PREFIX}${process.pid}-`));
  for (const sub of [...Object.keys(PRIVATE_DIRS), "sock"]) mkdirSync(join(dir, sub), { mode: 0o700 });
  writeFileSync(join(dir, "libvirtd.conf"), libvirtdConf(dir));
  writeFileSync(join(dir, "etc", "qemu.conf"), QEMU_CONF);
  const uri = `qemu:///system?socket=${join(dir, "sock", "libvirt-sock")}`;

  // unshare execs sh, which execs libvirtd: the child's PID is libvirtd's. Mounts made in the new namespace
  // (private propagation) never reach the host's, and vanish with its last process.
  const child: ChildProcess = spawn("unshare", ["--mount", "--propagation", "private", "sh", "-c", startScript(dir)], {
    stdio: ["ignore", "ignore", "pipe"],
    detached: true,
  });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const pid = child.pid ?? 0;
  const killOnExit = (): void => killSync(dir, pid);
  if (live.size === 0) process.on("exit", onExit);
  live.add(killOnExit);

  const virsh = (args: string[], timeoutMs = 60_000): Promise<ExecResult> =>
    execProgram("virsh", ["-q", "-c", uri, ...args], { timeoutMs });
  const log = (): string => {
    const file = join(dir, "log", "libvirtd.log");
    return stderr + (existsSync(file) ? readFileSync(file, "utf8").split("\n").slice(-20).join("\n") : "");
  };

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (isRunning(pid)) {
        const running = (await virsh(["list", "--name"], 15_000)).stdout.split("\n").filter(Boolean);
        for (const name of running) await virsh(["destroy", name], 30_000);
        const all = (await virsh(["list", "--all", "--name"], 15_000)).stdout.split("\n").filter(Boolean);
        for (const name of all) await virsh(["undefine", name], 15_000);
      }
      // Whatever destroy missed (or a daemon that died first left running).
      await terminate(qemuPids(dir), 5000);
      await terminate([pid], 10_000);
      live.delete(killOnExit);
      if (live.size === 0) process.off("exit", onExit);
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (!isRunning(pid)) throw new Error(`libvirt: libvirtd exited at start:\n${log()}`);
      if (existsSync(join(dir, "sock", "libvirt-sock")) && (await virsh(["version"], 10_000)).code === 0) break;
      if (Date.now() > deadline) throw new Error(`libvirt: libvirtd did not answer within 60 s:\n${log()}`);
      await sleep(200);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { uri, pid, dir, virsh, stop };
}

/** `virsh -c <uri> ...` that throws on failure (for scripts). */
export function virshChecked(uri: string, args: string[]): Promise<string> {
  return execChecked("virsh", ["-q", "-c", uri, ...args], { timeoutMs: 60_000 });
}

/** The tools that are not installed, each with its Debian packages. */
function missingTools(): string[] {
  const tools: Record<string, string> = {
    libvirtd: "libvirt-daemon libvirt-daemon-driver-qemu",
    virsh: "libvirt-clients",
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    unshare: "util-linux",
  };
  return Object.entries(tools)
    .filter(([tool]) => spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status !== 0)
    .map(([tool, pkg]) => `${tool} (${pkg})`);
}
