/**
 * A real OpenSSH server for one test file: its own temp dir, freshly generated host and client keys, its own
 * sshd_config, a free port on the given listen address, optionally inside a network namespace the test made.
 * Stopped by its own PID (never by name); `kill()` and `start()` stop and restart the same server (same keys,
 * same port) for fault tests.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import type { SshTarget } from "../../modules/remote/types";
import { freePort } from "./ports";
import { readSshBanner } from "./ssh-banner";

/** Host key types the harness can generate (ssh-keygen -t). */
export type HostKeyType = "ed25519" | "ecdsa" | "rsa";

/** How to start a test sshd. */
export interface SshdOptions {
  /** Address sshd listens on (an address inside a test network namespace later); default 127.0.0.1. */
  listenAddress?: string;
  /** Port to listen on; default a free port on listenAddress. */
  port?: number;
  /** Host keys to generate, in sshd's order; default ["ed25519"]. */
  hostKeyTypes?: HostKeyType[];
  /**
   * Run sshd inside this network namespace (`ip netns exec`). The port is then not probed from the host (which
   * may not reach the namespace): it defaults to 22, and readiness is sshd's own "Server listening" log line.
   */
  netns?: string;
  /** Extra sshd_config lines (e.g. "AllowTcpForwarding no"). */
  extraConfig?: string[];
  /** UsePAM for sshd: only needed to log in as a local user whose password is locked ("!"). */
  usePam?: boolean;
}

/** A running test sshd. */
export interface Sshd {
  host: string;
  port: number;
  /** Pinned-key line (`<type> <base64>`) of each generated host key. */
  hostKeys: Record<HostKeyType, string>;
  /** The first host key's line. */
  hostKey: string;
  /** OpenSSH private key text of the authorized client key. */
  clientPrivateKey: string;
  /** The server's temp dir (removed by stop()). */
  dir: string;
  /** The authorized client key's public line (for a test user's ~/.ssh/authorized_keys). */
  clientPublicKey: string;
  /** Everything sshd logged so far (-e: its log goes to stderr), across restarts. */
  log(): string;
  /** TCP connections sshd has accepted so far (its "Connection from" log lines), across restarts. */
  connectionsSeen(): number;
  /** An SshTarget for this server, as root with no retries unless overridden. */
  target(overrides?: Partial<SshTarget>): SshTarget;
  /** Stops the sshd process but keeps its keys and port, so start() brings the same server back. */
  kill(): Promise<void>;
  /** Starts it again after kill(); resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops sshd and removes its directory. */
  stop(): Promise<void>;
}

const SSHD = "/usr/sbin/sshd";

/** PIDs whose parent is `parent` (sshd's per-connection processes), read from /proc. */
function childPids(parent: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")".
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === parent) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

/** Waits up to `ms` for the listener's connection processes to end; returns those still running. */
async function connectionProcesses(listener: number, ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  let pids = childPids(listener);
  while (pids.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    pids = childPids(listener);
  }
  return pids;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

/** Resolves once the server answers with an SSH banner; the process exiting first is an error. */
async function waitForBanner(host: string, port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`sshd exited early:\n${log()}`);
    const banner = await readSshBanner(host, port);
    if (banner.startsWith("SSH-2.0-")) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`sshd did not accept connections on ${host}:${port} within 10s:\n${log()}`);
}

function keygen(type: HostKeyType, file: string): string {
  const size = type === "rsa" ? ["-b", "3072"] : [];
  execFileSync("ssh-keygen", ["-q", "-t", type, ...size, "-N", "", "-C", "", "-f", file]);
  return readFileSync(`${file}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
}

/** Resolves once sshd logs that it listens (for a server in a namespace the host cannot reach). */
async function waitForListening(child: ChildProcess, log: () => string, from: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`sshd exited early:\n${log()}`);
    if (/Server listening on /.test(log().slice(from))) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`sshd did not start listening within 10s:\n${log()}`);
}

/** Starts sshd and waits until it accepts connections. Call stop() (useSshd does it in an after hook). */
export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  const host = options.listenAddress ?? "127.0.0.1";
  const types = options.hostKeyTypes ?? ["ed25519"];
  // sshd's privilege separation directory; absent on a machine where sshd never ran as a service.
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(join(tmpdir(), "nodeforge-sshd-"));
  chmodSync(dir, 0o755); // a non-root test user must reach authorized_keys
  const hostKeys = {} as Record<HostKeyType, string>;
  for (const type of types) hostKeys[type] = keygen(type, join(dir, `ssh_host_${type}_key`));
  const clientKeyFile = join(dir, "client_key");
  const clientPublic = keygen("ed25519", clientKeyFile);
  writeFileSync(join(dir, "authorized_keys"), `${clientPublic}\n`, { mode: 0o644 });
  const port = options.port ?? (options.netns ? 22 : await freePort(host));
  const config = [
    `Port ${port}`,
    `ListenAddress ${host}`,
    ...types.map((type) => `HostKey ${join(dir, `ssh_host_${type}_key`)}`),
    `PidFile ${join(dir, "sshd.pid")}`,
    // The harness's key for root; a test user's own ~/.ssh/authorized_keys as well.
    `AuthorizedKeysFile ${join(dir, "authorized_keys")} .ssh/authorized_keys`,
    "PermitRootLogin prohibit-password",
    "PubkeyAuthentication yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    `UsePAM ${options.usePam ? "yes" : "no"}`,
    "StrictModes no",
    "LogLevel VERBOSE",
    "MaxStartups 50",
    ...(options.extraConfig ?? []),
  ];
  const configFile = join(dir, "sshd_config");
  writeFileSync(configFile, config.join("\n") + "\n");

  let logText = "";
  const log = (): string => logText;
  let child: ChildProcess | undefined;
  const running = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null;
  // Last resort if the test process dies without running its after hooks: never leave an sshd behind.
  const killOnExit = (): void => {
    if (running()) child!.kill("SIGKILL");
  };

  const kill = async (): Promise<void> => {
    process.removeListener("exit", killOnExit);
    if (!child) return;
    const current = child;
    const listener = current.pid === undefined ? undefined : childPids(current.pid)[0];
    if (running() && listener !== undefined) {
      // Give clients a moment to disconnect so sshd reaps its connection processes, end the rest, then sshd.
      for (const pid of await connectionProcesses(listener, 2000)) signal(pid, "SIGTERM");
      for (const pid of await connectionProcesses(listener, 2000)) signal(pid, "SIGKILL");
      signal(listener, "SIGTERM");
    }
    if (running()) {
      const exited = new Promise((resolve) => current.once("exit", resolve));
      const timer = setTimeout(() => current.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(timer);
    }
    child = undefined;
  };

  const start = async (): Promise<void> => {
    if (running()) return;
    // sshd runs as init of its own PID namespace. Its per-connection monitor can exit before the monitor's
    // unprivileged child; the orphan then goes to the namespace's init, sshd, which reaps it at once (this
    // host's PID 1 reaps lazily). --kill-child: if unshare is killed, the kernel ends sshd and the namespace.
    // --mount-proc: /proc shows that namespace, as on a real machine (sudo's password wrapper reads /proc/<pid>).
    const command = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", SSHD, "-D", "-e", "-f", configFile];
    const argv = options.netns ? ["ip", "netns", "exec", options.netns, ...command] : command;
    const from = logText.length;
    // `ip netns exec` execs its command, so the child is unshare either way.
    const started = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
    child = started;
    started.stderr!.on("data", (chunk: Buffer) => (logText += chunk.toString("utf8")));
    process.once("exit", killOnExit);
    try {
      if (options.netns) await waitForListening(started, log, from);
      else await waitForBanner(host, port, started, log);
    } catch (error) {
      await kill();
      throw error;
    }
  };

  const stop = async (): Promise<void> => {
    await kill();
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await start();
  } catch (error) {
    await stop();
    throw error;
  }
  const clientPrivateKey = readFileSync(clientKeyFile, "utf8");
  return {
    host,
    port,
    hostKeys,
    hostKey: hostKeys[types[0]!],
    clientPrivateKey,
    clientPublicKey: clientPublic,
    dir,
    log,
    connectionsSeen: () =>
      log()
        .split("\n")
        .filter((line) => line.startsWith("Connection from ")).length,
    target: (overrides = {}) => ({
      machine: "test-machine",
      host,
      port,
      user: "root",
      privateKey: clientPrivateKey,
      hostKey: hostKeys[types[0]!],
      sudo: false,
      connectTimeoutSeconds: 5,
      retries: 0,
      ...overrides,
    }),
    kill,
    start,
    stop,
  };
}

/**
 * Registers before/after hooks in the current suite (or file): sshd starts before the first test and stops
 * after the last one, also when a test failed. Returns an accessor for the running server.
 */
export function useSshd(options: SshdOptions = {}): () => Sshd {
  let server: Sshd | undefined;
  before(async () => {
    server = await startSshd(options);
  });
  after(async () => {
    await server?.stop();
  });
  return () => {
    if (!server) throw new Error("sshd is not running (useSshd's before hook failed or has not run)");
    return server;
  };
}
