/**
 * SSH sessions: one node-ssh connection per machine (and identity), reused across all calls in the process,
 * closed after an idle period. `runRemote` runs a script privileged the way the target says (root, sudo, or
 * sudo with a password fed on stdin).
 *
 * The pool lives on globalThis rather than in a module variable: the RemoteFile provider is shipped to the
 * engine through Pulumi's closure serialization, which would copy a module-level pool (live sockets included)
 * into the provider text. Functions here only capture constants and other functions.
 */
import { randomBytes } from "node:crypto";
import { StringDecoder } from "node:string_decoder";
import { NodeSSH } from "node-ssh";
import { shellQuote } from "../render/shell";
import { hostKeyVerification, type HostKeyVerification } from "./host-key";
import type { SshTarget } from "./types";

/** An idle connection is closed after this long; the timer is unref'd so it never keeps a process alive. */
const IDLE_CLOSE_MS = 15_000;
/** sshd's MaxSessions defaults to 10 channels per connection; stay under it when many resources share one. */
const MAX_CHANNELS_PER_CONNECTION = 8;
const POOL_GLOBAL = "__nodeforgeSshSessionPool";

interface Session {
  connection: Promise<NodeSSH>;
  active: number;
  waiting: (() => void)[];
  idleTimer?: NodeJS.Timeout;
  closed: boolean;
}

interface Pool {
  sessions: Map<string, Session>;
  /** SSH connections established since the process started (for tests and benchmarks). */
  connects: number;
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
    current = { sessions: new Map(), connects: 0 };
    holder[POOL_GLOBAL] = current;
  }
  return current;
}

function sessionKey(target: SshTarget): string {
  return JSON.stringify([target.machine, target.host, target.port, target.user, target.hostKey]);
}

/** Removes a leading `<machine>: ` so an error can be re-prefixed with more context. */
export function withoutMachinePrefix(machine: string, message: string): string {
  return message.startsWith(`${machine}: `) ? message.slice(machine.length + 2) : message;
}

function describeConnectError(target: SshTarget, error: unknown, verification: HostKeyVerification): Error {
  const mismatch = verification.mismatch();
  if (mismatch) return mismatch;
  const cause = error as Error & { code?: string; level?: string };
  const message = cause?.message ?? String(error);
  const where = `${target.host}:${target.port}`;
  let what: string;
  if (cause?.code === "ECONNREFUSED") what = `connection to ${where} refused (is sshd listening there?)`;
  else if (cause?.code === "EHOSTUNREACH" || cause?.code === "ENETUNREACH") what = `${where} is unreachable`;
  else if (cause?.code === "ETIMEDOUT" || /timed out/i.test(message)) {
    what = `connection to ${where} timed out after ${target.connectTimeoutSeconds}s`;
  } else if (cause?.level === "client-authentication") {
    what = `authentication as ${target.user} at ${where} failed: the private key was not accepted`;
  } else if (/host key|no matching/i.test(message)) {
    what = `${where} offers no ${verification.pinned.type} host key (the pinned key's type): ${message}`;
  } else if (/privateKey/i.test(message)) what = `the private key cannot be used: ${message}`;
  else what = `ssh connection to ${where} failed: ${message}`;
  return new Error(`${target.machine}: ${what}`);
}

async function connect(target: SshTarget): Promise<NodeSSH> {
  let verification: HostKeyVerification;
  try {
    verification = hostKeyVerification(target.machine, `${target.host}:${target.port}`, target.hostKey);
  } catch (error) {
    throw new Error(`${target.machine}: pinned host key: ${(error as Error).message}`);
  }
  const ssh = new NodeSSH();
  try {
    await ssh.connect({
      host: target.host,
      port: target.port,
      username: target.user,
      privateKey: target.privateKey,
      readyTimeout: target.connectTimeoutSeconds * 1000,
      // Detect a dead peer on a pooled connection instead of hanging on it.
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
      ...verification.options,
    });
  } catch (error) {
    ssh.dispose();
    throw describeConnectError(target, error, verification);
  }
  pool().connects += 1;
  return ssh;
}

function closeSession(key: string, session: Session): Promise<void> {
  session.closed = true;
  clearTimeout(session.idleTimer);
  const sessions = pool().sessions;
  if (sessions.get(key) === session) sessions.delete(key);
  return session.connection.then(
    (ssh) => ssh.dispose(),
    () => undefined,
  );
}

function openSession(key: string, target: SshTarget): Session {
  const session: Session = { connection: connect(target), active: 0, waiting: [], closed: false };
  session.connection.then(
    (ssh) => {
      const client = ssh.connection as unknown as ExecClient | null;
      // node-ssh drops its error listener once connected; without one a later socket error would crash the process.
      client?.on("error", () => void closeSession(key, session));
      client?.on("close", () => void closeSession(key, session));
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
    return await fn(await session.connection);
  } finally {
    release(key, session);
  }
}

/** Closes every pooled connection (end of a test, of a CLI command). */
export async function closeAllSessions(): Promise<void> {
  await Promise.all([...pool().sessions].map(([key, session]) => closeSession(key, session)));
}

/** How many connections are open now and how many were established in this process. */
export function sessionStats(): { open: number; connects: number } {
  const current = pool();
  return { open: current.sessions.size, connects: current.connects };
}

type Privilege = "direct" | "sudo" | "sudo-password";

function privilegeOf(target: SshTarget): Privilege {
  if (target.user === "root" || !target.sudo) return "direct";
  return target.sudoPassword === undefined || target.sudoPassword === "" ? "sudo" : "sudo-password";
}

/** Drops the pooled session only if its connection is gone: closing a live one would cut other commands. */
async function discardIfDead(key: string): Promise<void> {
  const session = pool().sessions.get(key);
  if (!session) return;
  const ssh = await session.connection.catch(() => undefined);
  if (!ssh?.isConnected()) await closeSession(key, session);
}

/** Raised when the command could not even start, so running it again on a fresh connection is safe. */
class NotStartedError extends Error {}

interface Exchange {
  command: string;
  privilege: Privilege;
  password?: string;
  /** sudo's prompt (`-p`), seen on stderr when sudo wants the password. */
  promptMarker: string;
  /** Printed on stderr by the wrapped script once sudo has let it run: the payload may follow. */
  readyMarker: string;
  stdin?: Buffer;
}

function exchangeFor(target: SshTarget, script: string, stdin: string | Buffer | undefined): Exchange {
  const privilege = privilegeOf(target);
  const nonce = randomBytes(12).toString("hex");
  const promptMarker = `[nodeforge-sudo-password-${nonce}]`;
  const readyMarker = `nodeforge-ready-${nonce}`;
  let command: string;
  if (privilege === "direct") command = `/bin/sh -c ${shellQuote(script)}`;
  else if (privilege === "sudo") command = `sudo -n -- /bin/sh -c ${shellQuote(script)}`;
  else {
    const wrapped = `printf '%s\\n' ${shellQuote(readyMarker)} >&2\n${script}`;
    command = `sudo -S -p ${shellQuote(promptMarker)} -- /bin/sh -c ${shellQuote(wrapped)}`;
  }
  const payload = stdin === undefined ? undefined : Buffer.isBuffer(stdin) ? stdin : Buffer.from(stdin, "utf8");
  return { command, privilege, password: target.sudoPassword, promptMarker, readyMarker, stdin: payload };
}

function countOf(text: string, marker: string): number {
  return text.split(marker).length - 1;
}

/**
 * Runs one exchange on a channel. With a sudo password the order is what keeps it out of the payload: the
 * password goes in only after sudo's prompt marker shows on stderr (once; a second prompt means it was
 * refused and stdin is closed), the payload only after the script's ready marker shows.
 */
function execute(ssh: NodeSSH, exchange: Exchange): Promise<RemoteResult> {
  const client = ssh.connection as unknown as ExecClient | null;
  if (!client) return Promise.reject(new NotStartedError("the connection is closed"));
  return new Promise((resolve, reject) => {
    const onOpen = (error: Error | undefined, channel: ExecChannel): void => {
      if (error) return reject(new NotStartedError(error.message));
      const stdout: Buffer[] = [];
      const decoder = new StringDecoder("utf8");
      let stderr = "";
      let promptsAnswered = 0;
      let ready = exchange.privilege !== "sudo-password";
      let exit: { code?: number; signal?: string } | undefined;
      if (ready) channel.end(exchange.stdin);
      channel.on("data", (chunk: Buffer) => stdout.push(chunk));
      channel.stderr.on("data", (chunk: Buffer) => {
        stderr += decoder.write(chunk);
        if (ready) return;
        if (stderr.includes(`${exchange.readyMarker}\n`)) {
          ready = true;
          channel.end(exchange.stdin);
          return;
        }
        const prompts = countOf(stderr, exchange.promptMarker);
        if (prompts > promptsAnswered) {
          promptsAnswered = prompts;
          if (prompts === 1) channel.write(`${exchange.password ?? ""}\n`);
          else channel.end();
        }
      });
      channel.on("exit", (code: number | null, signal?: string) => {
        exit = { code: code ?? undefined, signal: signal ?? undefined };
      });
      channel.on("error", (channelError: Error) => reject(channelError));
      channel.on("close", () => {
        stderr += decoder.end();
        const cleaned = stderr.split(exchange.promptMarker).join("").split(`${exchange.readyMarker}\n`).join("");
        if (exit?.code !== undefined) {
          return resolve({ code: exit.code, stdout: Buffer.concat(stdout).toString("utf8"), stderr: cleaned });
        }
        const why = exit?.signal
          ? `was killed by signal ${exit.signal}`
          : "ended without an exit status (connection lost?)";
        reject(new Error(`the remote command ${why}${cleaned.trim() ? `: ${cleaned.trim()}` : ""}`));
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
 * `sudo -n`, or `sudo -S` with the password fed on stdin after sudo's prompt. Resolves with the exit code and
 * output whatever the code; rejects (message starting `<machine>: `) when the command could not run.
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
      // A pooled connection may have died while idle; the command never started, so one retry is safe.
      if (error instanceof NotStartedError && attempt === 1) {
        await discardIfDead(sessionKey(target));
        continue;
      }
      // Connection errors already name the machine (and keep their class, e.g. HostKeyMismatchError).
      if (error instanceof Error && error.message.startsWith(`${target.machine}: `)) throw error;
      const prefix = error instanceof NotStartedError ? "ssh exec failed: " : "";
      throw new Error(`${target.machine}: ${prefix}${(error as Error).message}`);
    }
  }
}
