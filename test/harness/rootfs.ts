/**
 * The Debian 12 root file system the test machines boot from, and the harness's build cache.
 *
 * The rootfs is made once with debootstrap and kept outside the repository under CACHE_ROOT, keyed by a hash of
 * the debootstrap parameters and of every change made to it afterwards, so changing either builds a new one.
 * Builds happen in a temporary directory that is renamed into place only when complete: an interrupted build is
 * never used. Machines never boot this directory itself; each gets its own copy or overlay (see machines.ts).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";

/**
 * Where the harness keeps what is slow to make (rootfs, apt repository, tiny image); the environment variable
 * NODEFORGE_TEST_CACHE overrides it.
 */
export const CACHE_ROOT = process.env.NODEFORGE_TEST_CACHE ?? "/var/cache/nodeforge-test";

export interface ExecOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string | Buffer;
  timeoutMs?: number;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Programs started by execProgram and still running, and builds in progress: what abortAllSync() ends. */
const running = new Set<ChildProcess>();
/** Unfinished builds: temp directory -> lock directory. */
const buildsInProgress = new Map<string, string>();

/**
 * Runs a program (no shell) and resolves with its exit code and output (124 on timeout); rejects only when it
 * cannot be started. Each program gets its own process group, so a timeout or an abort ends what it started too
 * (debootstrap's dpkg, nsenter's command inside a machine).
 */
export function execProgram(file: string, args: string[], options: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: options.env, cwd: options.cwd, detached: true, stdio: "pipe" });
    running.add(child);
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    let timedOut = false;
    const timer = options.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          killGroup(child, "SIGKILL");
        }, options.timeoutMs)
      : undefined;
    child.on("error", (error) => {
      running.delete(child);
      clearTimeout(timer);
      reject(new Error(`${file}: ${error.message}`));
    });
    child.on("close", (code) => {
      running.delete(child);
      clearTimeout(timer);
      resolve({
        code: timedOut ? 124 : (code ?? -1),
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: Buffer.concat(stderr).toString("utf8"),
      });
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? "");
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * For exit and signal handlers: kills every running program's process group and removes unfinished builds
 * (an interrupted debootstrap leaves /proc mounted in its target: removeTreeSync unmounts it first).
 */
export function abortAllSync(): void {
  for (const child of running) killGroup(child, "SIGKILL");
  for (const [temp, lock] of buildsInProgress) {
    removeTreeSync(temp);
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Like execProgram, but an exit code other than 0 is an error that names the command and quotes its stderr. */
export async function execChecked(file: string, args: string[], options: ExecOptions = {}): Promise<string> {
  const result = await execProgram(file, args, options);
  if (result.code !== 0) {
    const tail = (result.stderr || result.stdout).trim().split("\n").slice(-15).join("\n");
    throw new Error(`${file} ${args.join(" ")} exited ${result.code}:\n${tail}`);
  }
  return result.stdout;
}

export function sha256Hex(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Mount points at or below `path`, deepest first (so they can be unmounted in this order). */
function mountsBelow(path: string): string[] {
  const prefix = path.endsWith("/") ? path : `${path}/`;
  const points = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((point): point is string => point !== undefined && (point === path || point.startsWith(prefix)))
    // mountinfo escapes spaces and the like as \ooo; the harness never makes such paths, so they only need decoding.
    .map((point) => point.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/**
 * Removes a directory tree that may still have file systems mounted inside it (an interrupted debootstrap leaves
 * /proc mounted in its target; an overlay machine root is a mount): unmount them first, and never cross into
 * another file system while deleting.
 */
export async function removeTree(path: string): Promise<void> {
  if (!existsSync(path)) return;
  for (const point of mountsBelow(path)) await execProgram("umount", ["-l", point]);
  await execChecked("rm", ["-rf", "--one-file-system", path]);
}

/** Synchronous removeTree for the process 'exit' handler, where nothing asynchronous runs any more. */
export function removeTreeSync(path: string): void {
  if (!existsSync(path)) return;
  for (const point of mountsBelow(path)) spawnSync("umount", ["-l", point], { stdio: "ignore" });
  spawnSync("rm", ["-rf", "--one-file-system", path], { stdio: "ignore" });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Returns `finalPath`, building it first with `build(tempPath)` when it does not exist. The temp path is a sibling
 * of `finalPath` (same file system, so the rename is atomic); a lock directory keeps two processes from building
 * the same thing at once, and leftovers of builds whose process died are removed before a new build.
 */
export async function buildCached(finalPath: string, build: (tempPath: string) => Promise<void>): Promise<boolean> {
  if (existsSync(finalPath)) return false;
  mkdirSync(dirname(finalPath), { recursive: true });
  const lock = `${finalPath}.lock`;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, "pid"), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      let owner = 0;
      try {
        owner = Number(readFileSync(join(lock, "pid"), "utf8"));
      } catch {
        // The owner has made the directory but not yet written its pid.
      }
      if (owner > 0 && !isAlive(owner)) rmSync(lock, { recursive: true, force: true });
      else await sleep(500);
    }
  }
  try {
    if (existsSync(finalPath)) return false;
    const base = finalPath.slice(dirname(finalPath).length + 1);
    for (const entry of readdirSync(dirname(finalPath))) {
      if (entry.startsWith(`${base}.tmp-`)) await removeTree(join(dirname(finalPath), entry));
    }
    const temp = `${finalPath}.tmp-${process.pid}`;
    buildsInProgress.set(temp, lock);
    try {
      await build(temp);
      renameSync(temp, finalPath);
    } catch (error) {
      await removeTree(temp);
      throw error;
    } finally {
      buildsInProgress.delete(temp);
    }
    return true;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

export interface DebootstrapParameters {
  suite: string;
  mirror: string;
  variant: string;
  include: string[];
  arch: string;
}

/** What debootstrap is asked for. containerd is deliberately absent: installing it is nodeforge's job. */
export const DEBOOTSTRAP: Omit<DebootstrapParameters, "arch"> = {
  suite: "bookworm",
  mirror: "http://deb.debian.org/debian",
  variant: "minbase",
  include: [
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "iproute2",
    "ca-certificates",
    "curl",
    "kmod",
    "procps",
    "sudo",
  ],
};

const CGROUP_RW_SCRIPT = `#!/bin/sh
# systemd-nspawn mounts the cgroup v1 controller hierarchies read-only inside the machine, but containerd and
# runc create cgroups in them. Only the per-mount flag is changed (remount,bind): a plain remount would try to
# change the shared cgroup superblock and fails with EBUSY. On a cgroup v2 host there is nothing to do.
set -eu
[ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] && exit 0
findmnt -rn -t cgroup,cgroup2 -o TARGET,OPTIONS | while read -r target options; do
  case ",$options," in
    *,ro,*) mount -o remount,bind,rw "$target" ;;
  esac
done
`;

const CGROUP_RW_UNIT = `[Unit]
Description=Remount cgroup v1 controllers read-write (nodeforge test machine)
DefaultDependencies=no
ConditionVirtualization=container
After=local-fs.target
Before=sysinit.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/nodeforge-cgroup-rw

[Install]
WantedBy=sysinit.target
`;

const SSHD_CONFIG = `# nodeforge test machine: key-only root login; no reverse DNS lookups (there is no DNS).
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
# The harness generates exactly this key per machine before boot; the others would only log errors.
HostKey /etc/ssh/ssh_host_ed25519_key
`;

/**
 * Units that wait for or need the internet, or would run maintenance in the middle of a test. Masked rather than
 * disabled, so a first-boot preset cannot turn them back on. console-getty only adds a login prompt to the log.
 */
const MASKED_UNITS = [
  "systemd-networkd-wait-online.service",
  "apt-daily.timer",
  "apt-daily.service",
  "apt-daily-upgrade.timer",
  "apt-daily-upgrade.service",
  "dpkg-db-backup.timer",
  "e2scrub_all.timer",
  "e2scrub_reap.service",
  "fstrim.timer",
  "console-getty.service",
];

interface RootfsFile {
  path: string;
  content: string;
  mode: number;
}

const FILES: RootfsFile[] = [
  { path: "etc/ssh/sshd_config.d/nodeforge-test.conf", content: SSHD_CONFIG, mode: 0o644 },
  { path: "usr/local/sbin/nodeforge-cgroup-rw", content: CGROUP_RW_SCRIPT, mode: 0o755 },
  { path: "etc/systemd/system/nodeforge-cgroup-rw.service", content: CGROUP_RW_UNIT, mode: 0o644 },
  // Each machine's sources.list names only the harness's local repository (written before boot).
  { path: "etc/apt/sources.list", content: "# written per machine by the nodeforge test harness\n", mode: 0o644 },
  {
    path: "etc/apt/apt.conf.d/90nodeforge-test",
    content: 'Acquire::Languages "none";\nAcquire::http::Timeout "15";\n',
    mode: 0o644,
  },
  // No nameserver: lookups fail at once instead of timing out against an address the machine cannot reach.
  { path: "etc/resolv.conf", content: "# no DNS on nodeforge test machines\n", mode: 0o644 },
  // Empty: every machine gets its own id before boot, and a clone must never carry another machine's id.
  { path: "etc/machine-id", content: "", mode: 0o444 },
];

export function hostArch(): Promise<string> {
  return execChecked("dpkg", ["--print-architecture"]).then((out) => out.trim());
}

/** The parameters and every later change (the files, the masks and customize()'s own code), hashed: the cache key. */
function rootfsKey(params: DebootstrapParameters): string {
  return sha256Hex(JSON.stringify({ params, files: FILES, masked: MASKED_UNITS, code: customize.toString() })).slice(
    0,
    16,
  );
}

function writeRootFile(root: string, file: RootfsFile): void {
  const path = join(root, file.path);
  mkdirSync(dirname(path), { recursive: true });
  rmSync(path, { force: true });
  writeFileSync(path, file.content);
  chmodSync(path, file.mode);
}

async function customize(root: string): Promise<void> {
  // debootstrap leaves every .deb it installed and the package lists: 50 MB that each machine copy would carry.
  for (const dir of ["var/cache/apt/archives", "var/lib/apt/lists"]) {
    for (const entry of readdirSync(join(root, dir))) {
      if (entry.endsWith(".deb") || entry.includes("_dists_")) rmSync(join(root, dir, entry), { force: true });
    }
  }
  // openssh-server's postinst made host keys: a clone must never share them (machines.ts makes one per machine).
  for (const entry of readdirSync(join(root, "etc/ssh"))) {
    if (entry.startsWith("ssh_host_")) rmSync(join(root, "etc/ssh", entry));
  }
  // systemd copies the D-Bus machine id into an empty /etc/machine-id: the dbus postinst made one for the rootfs.
  rmSync(join(root, "var/lib/dbus/machine-id"), { force: true });
  symlinkSync("/etc/machine-id", join(root, "var/lib/dbus/machine-id"));
  // The host's name, copied by debootstrap; each machine writes its own.
  rmSync(join(root, "etc/hostname"), { force: true });
  for (const file of FILES) writeRootFile(root, file);
  for (const unit of MASKED_UNITS) {
    const link = join(root, "etc/systemd/system", unit);
    rmSync(link, { force: true });
    symlinkSync("/dev/null", link);
  }
  mkdirSync(join(root, "etc/systemd/system/sysinit.target.wants"), { recursive: true });
  symlinkSync(
    "../nodeforge-cgroup-rw.service",
    join(root, "etc/systemd/system/sysinit.target.wants/nodeforge-cgroup-rw.service"),
  );
}

export interface Rootfs {
  /** The cached rootfs directory: read-only by convention, machines boot copies of it. */
  path: string;
  key: string;
  params: DebootstrapParameters;
  /** True when this call ran debootstrap; then `seconds` is the build time. */
  built: boolean;
  seconds: number;
}

/** Returns the cached Debian 12 rootfs, running debootstrap first (about 1-2 minutes) when it is missing. */
export async function ensureRootfs(): Promise<Rootfs> {
  const params: DebootstrapParameters = { ...DEBOOTSTRAP, arch: await hostArch() };
  const key = rootfsKey(params);
  const path = join(CACHE_ROOT, `rootfs-${params.suite}-${params.arch}-${key}`);
  const started = Date.now();
  const built = await buildCached(path, async (temp) => {
    await execChecked("debootstrap", [
      `--variant=${params.variant}`,
      `--arch=${params.arch}`,
      `--include=${params.include.join(",")}`,
      params.suite,
      temp,
      params.mirror,
    ]);
    await customize(temp);
  });
  return { path, key, params, built, seconds: (Date.now() - started) / 1000 };
}
