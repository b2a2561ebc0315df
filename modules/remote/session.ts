/**
 * SSH sessions: one node-ssh connection per machine (and identity), reused across all calls in the process,
 * closed after an idle period. Transient connection failures are retried with exponential backoff;
 * authentication and host key failures fail at once (dial.ts says which is which, and dials through a bastion).
 * `runRemote` runs a script privileged the way the target says (root, sudo, or sudo with a password: see
 * command-line.ts).
 *
 * The pool lives on globalThis rather than in a module variable: the dynamic providers (RemoteScript, RemoteFile, UnitState)
 * are shipped to the engine through Pulumi's closure serialization, which would copy a module-level pool (live
 * sockets included) into the provider text. Functions here only capture constants and other functions.
 */
import type { NodeSSH } from "node-ssh";
import { privilegedCommandLine, sudoPasswordLine, type Privilege } from "./command-line";
import { connectBastion, connectHop, forwardThrough, SshConnectError, type Hop } from "./dial";
import { HostKeyMismatchError } from "./host-key";
import type { SshTarget } from "./types";

/** An idle connection is closed after this long; the timer is unref'd so it never keeps a process alive. */
const IDLE_CLOSE_MS = 15_000;
/** sshd's MaxSessions defaults to 10 channels per connection; stay under it when many resources share one. */
const MAX_CHANNELS_PER_CONNECTION = 8;
/** A command that could not start is tried again this many times (5: 3.1 s of pauses for a refused channel). */
const NOT_STARTED_RETRIES = 5;
/** The pause before trying a refused channel again n times (1-based): CHANNEL_BACKOFF_MS * 2^(n-1). */
const CHANNEL_BACKOFF_MS = 100;
/** Backoff before retry n (1-based): BACKOFF_FIRST_MS * 2^(n-1), at most BACKOFF_MAX_MS. */
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 8_000;
const POOL_GLOBAL = "__nodeforgeSshSessionPool";

/** A live connection to a machine, and the bastion connection it runs over, if any. */
interface Connected {
  ssh: NodeSSH;
  bastion?: NodeSSH;
}

interface Session {
  connection: Promise<Connected>;
  active: number;
  waiting: (() => void)[];
  idleTimer?: NodeJS.Timeout;
  closed: boolean;
}

interface Pool {
  sessions: Map<string, Session>;
  /** SSH connections established since the process started (for tests and benchmarks). */
  connects: number;
  /** Connection attempts (each dial of a machine, successful or not; a bastion hop counts once per attempt). */
  attempts: number;
}

/** What a remote command produced. stdout and stderr are complete and untrimmed (UTF-8). */
export interface RemoteResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for runRemote. */
export interface RunRemoteOptions {
  /** Payload for the command's standard input; closed after it is written (or at once when absent). */
  stdin?: string | Buffer;
}

/** Minimal view of ssh2's Client and channel: ssh2 ships no type declarations. */
interface ExecChannel extends NodeJS.EventEmitter {
  stderr: NodeJS.EventEmitter;
  write(data: string | Buffer): boolean;
  end(data?: string | Buffer): void;
}
interface ExecClient extends NodeJS.EventEmitter {
  exec(command: string, callback: (error: Error | undefined, channel: ExecChannel) => void): void;
}

function pool(): Pool {
  const holder = globalThis as unknown as Record<string, Pool | undefined>;
  let current = holder[POOL_GLOBAL];
  if (!current) {
    current = { sessions: new Map(), connects: 0, attempts: 0 };
    holder[POOL_GLOBAL] = current;
  }
  current.attempts ??= 0;
  return current;
}

function sessionKey(target: SshTarget): string {
  const bastion = target.bastion;
  const via = bastion ? [bastion.host, bastion.port, bastion.user, bastion.hostKey] : null;
  return JSON.stringify([target.machine, target.host, target.port, target.user, target.hostKey, via]);
}

/**
 * An error's message. Not `instanceof Error`: after closure serialization (dynamic providers under the engine)
 * nodeforge's own error classes no longer inherit from Error.
 */
function messageOf(error: unknown): string | undefined {
  const message = (error as { message?: unknown } | undefined)?.message;
  return typeof message === "string" ? message : undefined;
}

/** Removes a leading `<machine>: ` so an error can be re-prefixed with more context. */
export function withoutMachinePrefix(machine: string, message: string): string {
  return message.startsWith(`${machine}: `) ? message.slice(machine.length + 2) : message;
}

/** One connection attempt: through the bastion when there is one. */
async function connectOnce(target: SshTarget): Promise<Connected> {
  const hop: Hop = {
    machine: target.machine,
    label: `${target.host}:${target.port}`,
    user: target.user,
    hostKey: target.hostKey,
    privateKey: target.privateKey,
    timeoutSeconds: target.connectTimeoutSeconds,
  };
  pool().attempts += 1;
  if (!target.bastion) return { ssh: await connectHop(hop, { host: target.host, port: target.port }, true) };
  const label = `bastion ${target.bastion.host}:${target.bastion.port}`;
  const bastion = await connectBastion(target.machine, target.bastion, target.connectTimeoutSeconds);
  try {
    const sock = await forwardThrough(
      target.machine,
      bastion,
      label,
      target.host,
      target.port,
      target.connectTimeoutSeconds,
    );
    const ssh = await connectHop({ ...hop, label: `${target.host}:${target.port} (via ${label})` }, { sock }, true);
    return { ssh, bastion };
  } catch (error) {
    bastion.dispose();
    throw error;
  }
}

/** Milliseconds to wait before retry `retry` (1-based). */
export function backoffMs(retry: number): number {
  return Math.min(BACKOFF_FIRST_MS * 2 ** (retry - 1), BACKOFF_MAX_MS);
}

/**
 * Connects with up to `retries` retries for transient failures, waiting backoffMs(n) before retry n. The final
 * error says how many attempts were made and over how long; a non-transient failure is thrown at once.
 */
async function connect(target: SshTarget): Promise<Connected> {
  const retries = Math.max(0, Math.floor(target.retries ?? 0));
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      const connected = await connectOnce(target);
      pool().connects += 1;
      return connected;
    } catch (error) {
      const transient = error instanceof SshConnectError && error.transient;
      if (!transient || attempt > retries) {
        const message = messageOf(error);
        if (attempt === 1 || message === undefined) throw error;
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        const final = new SshConnectError(`${message} (${attempt} attempts over ${seconds}s)`, transient);
        throw error instanceof HostKeyMismatchError ? error : final;
      }
      await new Promise((resolve) => setTimeout(resolve, backoffMs(attempt)));
    }
  }
}

function dispose(connected: Connected): void {
  connected.ssh.dispose();
  connected.bastion?.dispose();
}

function closeSession(key: string, session: Session): Promise<void> {
  session.closed = true;
  clearTimeout(session.idleTimer);
  const sessions = pool().sessions;
  if (sessions.get(key) === session) sessions.delete(key);
  return session.connection.then(dispose, () => undefined);
}

function openSession(key: string, target: SshTarget): Session {
  const session: Session = { connection: connect(target), active: 0, waiting: [], closed: false };
  session.connection.then(
    ({ ssh, bastion }) => {
      // node-ssh drops its error listener once connected; without one a later socket error would crash the process.
      for (const client of [ssh.connection, bastion?.connection]) {
        const events = client as unknown as ExecClient | null | undefined;
        events?.on("error", () => void closeSession(key, session));
        events?.on("close", () => void closeSession(key, session));
      }
    },
    () => void closeSession(key, session),
  );
  return session;
}

async function acquire(key: string, target: SshTarget): Promise<Session> {
  const sessions = pool().sessions;
  let session = sessions.get(key);
  if (!session || session.closed) {
    session = openSession(key, target);
    sessions.set(key, session);
  }
  clearTimeout(session.idleTimer);
  session.idleTimer = undefined;
  while (session.active >= MAX_CHANNELS_PER_CONNECTION) {
    await new Promise<void>((resolve) => session!.waiting.push(resolve));
  }
  session.active += 1;
  return session;
}

function release(key: string, session: Session): void {
  session.active -= 1;
  const next = session.waiting.shift();
  if (next) return next();
  if (session.active === 0 && !session.closed) {
    session.idleTimer = setTimeout(() => void closeSession(key, session), IDLE_CLOSE_MS);
    session.idleTimer.unref();
  }
}

/**
 * Runs `fn` with the machine's pooled connection, connecting first if needed. Connection failures are
 * Errors whose message starts with `<machine>: ` and says what failed.
 */
export async function withSession<T>(target: SshTarget, fn: (ssh: NodeSSH) => Promise<T>): Promise<T> {
  const key = sessionKey(target);
  const session = await acquire(key, target);
  try {
    return await fn((await session.connection).ssh);
  } finally {
    release(key, session);
  }
}

/** Closes every pooled connection (end of a test, of a CLI command). */
export async function closeAllSessions(): Promise<void> {
  await Promise.all([...pool().sessions].map(([key, session]) => closeSession(key, session)));
}

/** Open connections now; connections established and connection attempts made in this process. */
export function sessionStats(): { open: number; connects: number; attempts: number } {
  const current = pool();
  return { open: current.sessions.size, connects: current.connects, attempts: current.attempts };
}

function privilegeOf(target: SshTarget): Privilege {
  if (target.user === "root" || !target.sudo) return "direct";
  return target.sudoPassword === undefined || target.sudoPassword === "" ? "sudo" : "sudo-password";
}

/**
 * Drops the pooled session only if its connection is gone (closing a live one would cut other commands); says
 * whether it was gone.
 */
async function discardIfDead(key: string): Promise<boolean> {
  const session = pool().sessions.get(key);
  if (!session) return true;
  const connected = await session.connection.catch(() => undefined);
  if (connected?.ssh.isConnected()) return false;
  await closeSession(key, session);
  return true;
}

/** Raised when the command could not even start, so running it again on a fresh connection is safe. */
class NotStartedError extends Error {
  constructor(message: string) {
    super(message);
    // Set again: closure serialization turns super(message) into Error.call(this, message) (see dial.ts).
    this.message = message;
  }
}

interface Exchange {
  command: string;
  /** Everything written to the command's stdin: the sudo password line first when there is one. */
  stdin?: Buffer;
}

function exchangeFor(target: SshTarget, script: string, stdin: string | Buffer | undefined): Exchange {
  const privilege = privilegeOf(target);
  const payload = stdin === undefined ? undefined : Buffer.isBuffer(stdin) ? stdin : Buffer.from(stdin, "utf8");
  const command = privilegedCommandLine(script, privilege);
  if (privilege !== "sudo-password") return { command, stdin: payload };
  let line: string;
  try {
    line = sudoPasswordLine(target.sudoPassword ?? "");
  } catch (error) {
    throw new Error(`${target.machine}: ${(error as Error).message}`);
  }
  return { command, stdin: Buffer.concat([Buffer.from(line, "utf8"), payload ?? Buffer.alloc(0)]) };
}

/** Runs one exchange on a channel: writes stdin, closes it, collects output and the exit status. */
function execute(ssh: NodeSSH, exchange: Exchange): Promise<RemoteResult> {
  const client = ssh.connection as unknown as ExecClient | null;
  if (!client) return Promise.reject(new NotStartedError("the connection is closed"));
  return new Promise((resolve, reject) => {
    const onOpen = (error: Error | undefined, channel: ExecChannel): void => {
      if (error) return reject(new NotStartedError(error.message));
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let exit: { code?: number; signal?: string } | undefined;
      channel.end(exchange.stdin);
      channel.on("data", (chunk: Buffer) => stdout.push(chunk));
      channel.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
      channel.on("exit", (code: number | null, signal?: string) => {
        exit = { code: code ?? undefined, signal: signal ?? undefined };
      });
      channel.on("error", (channelError: Error) => reject(channelError));
      channel.on("close", () => {
        const errors = Buffer.concat(stderr).toString("utf8");
        if (exit?.code !== undefined) {
          return resolve({ code: exit.code, stdout: Buffer.concat(stdout).toString("utf8"), stderr: errors });
        }
        const why = exit?.signal
          ? `was killed by signal ${exit.signal}`
          : "ended without an exit status (connection lost?)";
        reject(new Error(`the remote command ${why}${errors.trim() ? `: ${errors.trim()}` : ""}`));
      });
    };
    try {
      client.exec(exchange.command, onOpen);
    } catch (error) {
      reject(new NotStartedError((error as Error).message));
    }
  });
}

/**
 * Runs `script` with /bin/sh on the target, as root: directly when the user is root (or sudo is off), else via
 * `sudo -n`, or sudo with the password as the first line of stdin (command-line.ts). Resolves with the exit
 * code and output whatever the code; rejects (message starting `<machine>: `) when the command could not run.
 */
export async function runRemote(
  target: SshTarget,
  script: string,
  options: RunRemoteOptions = {},
): Promise<RemoteResult> {
  const exchange = exchangeFor(target, script, options.stdin);
  for (let attempt = 1; ; attempt++) {
    try {
      return await withSession(target, (ssh) => execute(ssh, exchange));
    } catch (error) {
      // The command never started, so running it again is safe: on a fresh connection when the pooled one died
      // while idle; after a pause when sshd refused the channel on a live one (its MaxSessions counts channels it
      // has not finished closing, which many short commands in a row, a step's file reads, can run into).
      if (error instanceof NotStartedError && attempt <= NOT_STARTED_RETRIES) {
        const dead = await discardIfDead(sessionKey(target));
        if (!dead) await new Promise((resolve) => setTimeout(resolve, CHANNEL_BACKOFF_MS * 2 ** (attempt - 1)));
        continue;
      }
      // Connection errors already name the machine (and keep their class, e.g. HostKeyMismatchError).
      if (messageOf(error)?.startsWith(`${target.machine}: `)) throw error;
      const prefix = error instanceof NotStartedError ? "ssh exec failed: " : "";
      throw new Error(`${target.machine}: ${prefix}${(error as Error).message}`);
    }
  }
}
