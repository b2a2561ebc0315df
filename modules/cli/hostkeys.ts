/**
 * `nodeforge hostkeys FILE`: scans each machine's SSH host key once (through its bastion when it has one) and
 * prints, per machine, the fingerprint and the stack-file line to paste, for the operator to compare against
 * the machine's console (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`) before pasting. Machines that
 * already pin a key are checked against it: a mismatch is an error naming the machine and both fingerprints.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { parseHostKey, scanHostKey, type HostKeyScan, closeAllSessions } from "../remote";
import { formatIssue, loadStackFile, StackValidationError, type MachineSpec } from "../stack";

/** Options of the hostkeys command. */
export interface HostkeysOptions {
  /** Only these machines (default: all). */
  machines?: string[];
  /** Private key file for logging in to bastions (default: ~/.ssh/id_ed25519, id_ecdsa, id_rsa). */
  identity?: string;
  /** Seconds per connection attempt; default: each machine's ssh.connectTimeoutSeconds. */
  timeoutSeconds?: number;
  /** Machines scanned at once. */
  parallel?: number;
}

const DEFAULT_IDENTITIES = ["id_ed25519", "id_ecdsa", "id_rsa"];

function bastionIdentity(options: HostkeysOptions): { key?: string; problem?: string } {
  if (options.identity) {
    try {
      return { key: readFileSync(options.identity, "utf8") };
    } catch (error) {
      return { problem: `cannot read --identity ${options.identity}: ${(error as Error).message}` };
    }
  }
  for (const name of DEFAULT_IDENTITIES) {
    const file = join(homedir(), ".ssh", name);
    if (existsSync(file)) return { key: readFileSync(file, "utf8") };
  }
  return { problem: "no private key to log in to the bastion: pass --identity FILE" };
}

/** The result for one machine, as printed. */
interface Outcome {
  ok: boolean;
  out: string[];
  err: string[];
}

async function scanMachine(machine: MachineSpec, file: string, options: HostkeysOptions): Promise<Outcome> {
  const { ssh } = machine;
  const address = `${machine.address}:${ssh.port}`;
  const via = ssh.bastion ? ` via bastion ${ssh.bastion.address}:${ssh.bastion.port}` : "";
  let bastion;
  if (ssh.bastion) {
    const identity = bastionIdentity(options);
    if (!identity.key) return { ok: false, out: [], err: [`${machine.name}: ${identity.problem}`] };
    const { address: host, port, user, hostKey } = ssh.bastion;
    bastion = { host, port, user, hostKey, privateKey: identity.key };
  }
  let scan: HostKeyScan;
  try {
    scan = await scanHostKey({
      machine: machine.name,
      host: machine.address,
      port: ssh.port,
      ...(machine.hostKey ? { pinned: machine.hostKey } : {}),
      timeoutSeconds: options.timeoutSeconds ?? ssh.connectTimeoutSeconds,
      ...(bastion ? { bastion } : {}),
    });
  } catch (error) {
    return { ok: false, out: [], err: [(error as Error).message] };
  }
  const shown = `${machine.name} (${address}${via}): ${scan.fingerprint} (${scan.type})`;
  if (!machine.hostKey) {
    return {
      ok: true,
      out: [
        `${shown}: not pinned yet; compare the fingerprint with the machine's console, then add to ${machine.name} in ${file}:`,
        `    hostKey: ${scan.line}`,
      ],
      err: [],
    };
  }
  const pinned = parseHostKey(machine.hostKey);
  if (scan.line === `${pinned.type} ${pinned.blob.toString("base64")}`) {
    return { ok: true, out: [`${shown}: matches the pinned key`], err: [] };
  }
  return {
    ok: false,
    out: [],
    err: [
      `${machine.name}: host key mismatch for ${address}${via}: the stack file pins ${pinned.fingerprint} ` +
        `(${pinned.type}), the machine presented ${scan.fingerprint} (${scan.type})`,
      `    presented: hostKey: ${scan.line}`,
    ],
  };
}

/** Runs `work` over `items` with at most `limit` at a time; results in input order. */
async function inParallel<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * 0 when every machine was scanned and every pinned key matched; 1 when a scan failed or a key did not match;
 * 2 when the stack file is invalid. Fingerprints and lines go to `out`, problems to `err`.
 */
export async function hostkeysCommand(
  file: string,
  options: HostkeysOptions,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<number> {
  let machines: MachineSpec[];
  try {
    // VMs are left out: nodeforge generates their host keys (a Pulumi secret) and pins those.
    machines = loadStackFile(file, undefined, { requireHostKeys: false }).machines.filter((m) => !m.vm);
  } catch (error) {
    if (!(error instanceof StackValidationError)) throw error;
    for (const issue of error.issues) err.write(`${formatIssue(issue)}\n`);
    err.write(`${file}: ${error.issues.length} problem(s)\n`);
    return 2;
  }
  if (options.machines && options.machines.length > 0) {
    const unknown = options.machines.filter((name) => !machines.some((m) => m.name === name));
    if (unknown.length > 0) {
      err.write(`${file}: no machine named ${unknown.join(", ")}\n`);
      return 2;
    }
    machines = machines.filter((m) => options.machines!.includes(m.name));
  }
  try {
    const outcomes = await inParallel(machines, options.parallel ?? 8, (m) => scanMachine(m, file, options));
    for (const outcome of outcomes) {
      for (const line of outcome.out) out.write(`${line}\n`);
      for (const line of outcome.err) err.write(`${line}\n`);
    }
    const failed = outcomes.filter((o) => !o.ok).length;
    if (failed > 0) err.write(`${file}: ${failed} of ${machines.length} machine(s) failed the host key check\n`);
    return failed > 0 ? 1 : 0;
  } finally {
    await closeAllSessions();
  }
}
