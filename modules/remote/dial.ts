/**
 * Dialling one machine: directly, or through a bastion's `direct-tcpip` channel (what OpenSSH's ProxyJump does),
 * every hop's host key verified. Failures become `<machine>: <what failed at which hop>` errors marked transient
 * (worth a retry) or not (authentication, host keys, unusable keys, a bastion that forbids forwarding).
 */
import type { Duplex } from "node:stream";
import { NodeSSH } from "node-ssh";
import { hostKeyVerification, type HostKeyVerification } from "./host-key";
import type { BastionTarget } from "./types";

/** Minimal view of ssh2's Client for port forwarding: ssh2 ships no type declarations. */
interface ForwardingClient {
  forwardOut(
    srcIP: string,
    srcPort: number,
    dstIP: string,
    dstPort: number,
    callback: (error: (Error & { reason?: number }) | undefined, channel: Duplex) => void,
  ): void;
}

/**
 * A failed connection attempt. `transient` failures (the machine may answer in a moment) are retried; the rest
 * (authentication, host keys, unusable keys, a bastion that forbids forwarding) are not.
 */
export class SshConnectError extends Error {
  constructor(
    message: string,
    readonly transient: boolean,
  ) {
    super(message);
    // Dynamic providers reach the engine through Pulumi's closure serializer, which turns `super(...)` into
    // `Error.call(this, ...)`: that sets nothing on `this`, so the message is set here (else it reads "undefined").
    this.message = message;
    this.name = "SshConnectError";
  }
}

/** One hop: the machine itself, or the bastion on the way to it. */
export interface Hop {
  machine: string;
  /** `10.0.0.5:22` or `bastion 203.0.113.7:22`: how messages name this hop. */
  label: string;
  user: string;
  hostKey: string;
  privateKey: string;
  timeoutSeconds: number;
}

const TRANSIENT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "ENETDOWN",
  "EPIPE",
  "EAI_AGAIN",
]);

/** Turns an ssh2/socket error into `<machine>: <what failed at which hop>`, marked transient or not. */
export function describeConnectError(hop: Hop, error: unknown, verification?: HostKeyVerification): Error {
  const mismatch = verification?.mismatch();
  if (mismatch) return mismatch;
  const cause = error as Error & { code?: string; level?: string };
  const message = cause?.message ?? String(error);
  const where = hop.label;
  const code = cause?.code ?? "";
  let what: string;
  let transient = false;
  if (code === "ECONNREFUSED") {
    what = `connection to ${where} refused (is sshd listening there?)`;
    transient = true;
  } else if (code === "EHOSTUNREACH" || code === "ENETUNREACH") {
    what = `${where} is unreachable (${code})`;
    transient = true;
  } else if (code === "ETIMEDOUT" || cause?.level === "client-timeout" || /timed out/i.test(message)) {
    what = `connection to ${where} timed out after ${hop.timeoutSeconds}s`;
    transient = true;
  } else if (cause?.level === "client-authentication") {
    what = `authentication as ${hop.user} at ${where} failed: the private key was not accepted`;
  } else if (/host key|no matching/i.test(message)) {
    const type = verification
      ? `${verification.pinned.type} host key (the pinned key's type)`
      : "host key nodeforge can use";
    what = `${where} offers no ${type}: ${message}`;
  } else if (/privateKey|private key/i.test(message)) {
    what = `the private key for ${where} cannot be used: ${message}`;
  } else if (/Connection lost before handshake/i.test(message) || TRANSIENT_CODES.has(code)) {
    what = `ssh connection to ${where} failed: ${message}`;
    transient = true;
  } else if (code === "ENOTFOUND") {
    what = `${where}: the name does not resolve (${code})`;
  } else {
    what = `ssh connection to ${where} failed: ${message}`;
  }
  return new SshConnectError(`${hop.machine}: ${what}`, transient);
}

/** Connects one hop, directly (host/port) or over a channel `sock` the previous hop opened. */
export async function connectHop(
  hop: Hop,
  endpoint: { host: string; port: number } | { sock: Duplex },
  keepalive: boolean,
): Promise<NodeSSH> {
  let verification: HostKeyVerification;
  try {
    verification = hostKeyVerification(hop.machine, hop.label, hop.hostKey);
  } catch (error) {
    const which = hop.label.startsWith("bastion ") ? "the bastion's pinned host key" : "pinned host key";
    throw new SshConnectError(`${hop.machine}: ${which}: ${(error as Error).message}`, false);
  }
  const ssh = new NodeSSH();
  try {
    await ssh.connect({
      ...endpoint,
      username: hop.user,
      privateKey: hop.privateKey,
      readyTimeout: hop.timeoutSeconds * 1000,
      // Detect a dead peer on a pooled connection instead of hanging on it.
      ...(keepalive ? { keepaliveInterval: 15_000, keepaliveCountMax: 4 } : {}),
      ...verification.options,
    });
  } catch (error) {
    ssh.dispose();
    throw describeConnectError(hop, error, verification);
  }
  return ssh;
}

/**
 * Asks the bastion to open a TCP channel to host:port (sshd's `direct-tcpip`). A refused or unreachable machine
 * is transient; a bastion that forbids forwarding (AllowTcpForwarding no) is not.
 */
export function forwardThrough(
  machine: string,
  bastion: NodeSSH,
  bastionLabel: string,
  host: string,
  port: number,
  timeoutSeconds: number,
): Promise<Duplex> {
  const client = bastion.connection as unknown as ForwardingClient | null;
  const where = `${bastionLabel} cannot reach ${host}:${port}`;
  return new Promise((resolve, reject) => {
    if (!client) return reject(new SshConnectError(`${machine}: ${where}: the bastion connection closed`, true));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      reject(new SshConnectError(`${machine}: ${where}: timed out after ${timeoutSeconds}s`, true));
    }, timeoutSeconds * 1000);
    try {
      client.forwardOut("127.0.0.1", 0, host, port, (error, channel) => {
        clearTimeout(timer);
        // A channel that opens after the timeout has nobody waiting for it.
        if (timedOut) return void channel?.destroy();
        if (!error) return resolve(channel);
        // RFC 4254 reasons: 1 administratively prohibited, 2 connect failed, 3 unknown type, 4 resource shortage.
        const reason = error.reason;
        const detail = error.message.replace(/^\(SSH\) Channel open failure: ?/, "") || "channel open failed";
        const prohibited = reason === 1 || reason === 3;
        const hint = prohibited ? " (does the bastion allow TCP forwarding for this user?)" : "";
        reject(new SshConnectError(`${machine}: ${where}: ${detail}${hint}`, !prohibited));
      });
    } catch (error) {
      clearTimeout(timer);
      reject(new SshConnectError(`${machine}: ${where}: ${(error as Error).message}`, true));
    }
  });
}

/** The bastion as a hop, labelled so that every message says it was the bastion. */
export function bastionHop(machine: string, bastion: BastionTarget, timeoutSeconds: number): Hop {
  return {
    machine,
    label: `bastion ${bastion.host}:${bastion.port}`,
    user: bastion.user,
    hostKey: bastion.hostKey,
    privateKey: bastion.privateKey,
    timeoutSeconds,
  };
}

/** Logs in to the bastion (host key verified), for a machine behind it. */
export function connectBastion(machine: string, bastion: BastionTarget, timeoutSeconds: number): Promise<NodeSSH> {
  return connectHop(bastionHop(machine, bastion, timeoutSeconds), { host: bastion.host, port: bastion.port }, true);
}
