/**
 * A real OpenSSH server for one test file: its own temp dir, freshly generated host and client keys, its own
 * sshd_config, a free port on the given listen address. Stopped by its own PID (never by name).
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { shellQuote } from "../../modules/render/shell";
import type { SshTarget } from "../../modules/remote/types";

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
   * Install a sudo test double (not real sudo: it checks the `-S -p` password exchange and then runs the
   * command as the same user) first on the session PATH, accepting this password. Its argv is logged.
   */
  fakeSudoPassword?: string;
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
  /** Everything sshd logged so far (-e: its log goes to stderr). */
  log(): string;
  /** Arguments the sudo test double was called with, one call per line. */
  sudoCalls(): string;
  /** An SshTarget for this server, as root unless overridden. */
  target(overrides?: Partial<SshTarget>): SshTarget;
  stop(): Promise<void>;
}

const SSHD = "/usr/sbin/sshd";

function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, address, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

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
    const banner = await new Promise<string>((resolve) => {
      const socket = connect({ host, port });
      let text = "";
      socket.setTimeout(1000, () => socket.destroy());
      socket.on("data", (chunk) => {
        text += chunk.toString("latin1");
        if (text.includes("\n")) socket.destroy();
      });
      socket.on("error", () => undefined);
      socket.on("close", () => resolve(text));
    });
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

function fakeSudoScript(password: string, callLog: string): string {
  return `#!/bin/sh
# Test double for sudo (see test/harness/sshd.ts): checks the password exchange, then runs the command as is.
printf '%s\\n' "$*" >> ${shellQuote(callLog)}
prompt='Password:'
noninteractive=0
while [ $# -gt 0 ]; do
  case "$1" in
    -n) noninteractive=1; shift ;;
    -S) shift ;;
    -p) prompt=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "fake sudo: unexpected option $1" >&2; exit 2 ;;
  esac
done
if [ "$noninteractive" = 1 ]; then echo "sudo: a password is required" >&2; exit 1; fi
tries=0
while :; do
  printf '%s' "$prompt" >&2
  IFS= read -r answer || { echo "sudo: no password was provided" >&2; exit 1; }
  [ "$answer" = ${shellQuote(password)} ] && break
  tries=$((tries + 1))
  echo "Sorry, try again." >&2
  if [ "$tries" -ge 3 ]; then echo "sudo: 3 incorrect password attempts" >&2; exit 1; fi
done
exec "$@"
`;
}

/** Starts sshd and waits until it accepts connections. Call stop() (useSshd does it in an after hook). */
export async function startSshd(options: SshdOptions = {}): Promise<Sshd> {
  const host = options.listenAddress ?? "127.0.0.1";
  const types = options.hostKeyTypes ?? ["ed25519"];
  // sshd's privilege separation directory; absent on a machine where sshd never ran as a service.
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(join(tmpdir(), "nodeforge-sshd-"));
  chmodSync(dir, 0o755); // a non-root test user must reach authorized_keys and the sudo double
  const hostKeys = {} as Record<HostKeyType, string>;
  for (const type of types) hostKeys[type] = keygen(type, join(dir, `ssh_host_${type}_key`));
  const clientKeyFile = join(dir, "client_key");
  const clientPublic = keygen("ed25519", clientKeyFile);
  writeFileSync(join(dir, "authorized_keys"), `${clientPublic}\n`, { mode: 0o644 });
  const sudoLog = join(dir, "sudo-calls.log");
  writeFileSync(sudoLog, "", { mode: 0o666 });
  chmodSync(sudoLog, 0o666);
  const config = [
    `ListenAddress ${host}`,
    ...types.map((type) => `HostKey ${join(dir, `ssh_host_${type}_key`)}`),
    `PidFile ${join(dir, "sshd.pid")}`,
    `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
    "PermitRootLogin prohibit-password",
    "PubkeyAuthentication yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    `UsePAM ${options.usePam ? "yes" : "no"}`,
    "StrictModes no",
    "LogLevel VERBOSE",
    "MaxStartups 50",
  ];
  if (options.fakeSudoPassword !== undefined) {
    const bin = join(dir, "bin");
    mkdirSync(bin, { mode: 0o755 });
    writeFileSync(join(bin, "sudo"), fakeSudoScript(options.fakeSudoPassword, sudoLog), { mode: 0o755 });
    config.push(`SetEnv PATH=${bin}:/usr/local/bin:/usr/bin:/bin`);
  }
  const port = options.port ?? (await freePort(host));
  config.unshift(`Port ${port}`);
  const configFile = join(dir, "sshd_config");
  writeFileSync(configFile, config.join("\n") + "\n");

  // sshd runs as init of its own PID namespace. Its per-connection monitor can exit before the monitor's
  // unprivileged child; the orphan then goes to the namespace's init, sshd, which reaps it at once (this host's
  // PID 1 reaps lazily). --kill-child: if unshare is killed, the kernel ends sshd and the whole namespace.
  const child = spawn("unshare", ["--pid", "--fork", "--kill-child", SSHD, "-D", "-e", "-f", configFile], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let logText = "";
  child.stderr!.on("data", (chunk: Buffer) => (logText += chunk.toString("utf8")));
  const log = (): string => logText;
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  // Last resort if the test process dies without running its after hooks: never leave an sshd behind.
  const killOnExit = (): void => {
    if (running()) child.kill("SIGKILL");
  };
  process.once("exit", killOnExit);

  const stop = async (): Promise<void> => {
    process.removeListener("exit", killOnExit);
    const listener = child.pid === undefined ? undefined : childPids(child.pid)[0];
    if (running() && listener !== undefined) {
      // Give clients a moment to disconnect so sshd reaps its connection processes, end the rest, then sshd.
      for (const pid of await connectionProcesses(listener, 2000)) signal(pid, "SIGTERM");
      for (const pid of await connectionProcesses(listener, 2000)) signal(pid, "SIGKILL");
      signal(listener, "SIGTERM");
    }
    if (running()) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await waitForBanner(host, port, child, log);
  } catch (error) {
    await stop();
    throw error;
  }
  const clientPrivateKey = readFileSync(clientKeyFile, "utf8");
  return {
    host,
    port,
    hostKeys,
    hostKey: hostKeys[types[0]],
    clientPrivateKey,
    dir,
    log,
    sudoCalls: () => readFileSync(sudoLog, "utf8"),
    target: (overrides = {}) => ({
      machine: "test-machine",
      host,
      port,
      user: "root",
      privateKey: clientPrivateKey,
      hostKey: hostKeys[types[0]],
      sudo: false,
      connectTimeoutSeconds: 5,
      ...overrides,
    }),
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
