/**
 * Host key scanning for `nodeforge hostkeys`: one SSH handshake per machine (through its bastion when it has
 * one), stopped as soon as the server has shown its host key: the verifier captures the key and refuses it, so
 * nothing is authenticated on the machine itself. Like ssh-keyscan, but bastions work and the key type asked
 * for is the pinned one (or ed25519, then ecdsa, then rsa for a machine not yet pinned).
 */
import type { Duplex } from "node:stream";
import { NodeSSH } from "node-ssh";
import {
  blobKeyType,
  fingerprintOf,
  hostKeyLine,
  parseHostKey,
  presentingAlgorithms,
  SCAN_PREFERENCE,
} from "./host-key";
import { connectBastion, describeConnectError, forwardThrough, type Hop } from "./dial";
import type { BastionTarget } from "./types";

/** What to scan. */
export interface ScanRequest {
  machine: string;
  host: string;
  port: number;
  /** The pinned key line, if the stack file has one: the scan asks for a key of that type only. */
  pinned?: string;
  timeoutSeconds: number;
  /** Jump host (logged in to with its pinned host key verified); the machine is scanned through it. */
  bastion?: BastionTarget;
}

/** The key a machine presented. */
export interface HostKeyScan {
  /** `<type> <base64>`: the value for the stack file's hostKey. */
  line: string;
  type: string;
  /** `SHA256:...`, as `ssh-keygen -lf` prints it. */
  fingerprint: string;
}

/** Scans one machine's host key. Rejects with `<machine>: <what failed>` when no key could be obtained. */
export async function scanHostKey(request: ScanRequest): Promise<HostKeyScan> {
  const serverHostKey = request.pinned ? presentingAlgorithms(parseHostKey(request.pinned).type) : [...SCAN_PREFERENCE];
  let bastion: NodeSSH | undefined;
  const ssh = new NodeSSH();
  let captured: Buffer | undefined;
  const label = `${request.host}:${request.port}`;
  try {
    let endpoint: { host: string; port: number } | { sock: Duplex } = { host: request.host, port: request.port };
    let hopLabel = label;
    if (request.bastion) {
      const via = `bastion ${request.bastion.host}:${request.bastion.port}`;
      bastion = await connectBastion(request.machine, request.bastion, request.timeoutSeconds);
      const sock = await forwardThrough(
        request.machine,
        bastion,
        via,
        request.host,
        request.port,
        request.timeoutSeconds,
      );
      endpoint = { sock };
      hopLabel = `${label} (via ${via})`;
    }
    try {
      await ssh.connect({
        ...endpoint,
        username: "nodeforge-hostkeys",
        readyTimeout: request.timeoutSeconds * 1000,
        algorithms: { serverHostKey },
        hostVerifier: (key: Buffer) => {
          captured = Buffer.from(key);
          return false;
        },
      });
    } catch (error) {
      if (!captured) {
        const message = (error as Error)?.message ?? String(error);
        if (request.pinned && /no matching host key/i.test(message)) {
          const type = parseHostKey(request.pinned).type;
          throw new Error(
            `${request.machine}: ${hopLabel} offers no ${type} host key (the pinned key's type): ${message}`,
          );
        }
        const hop: Hop = {
          machine: request.machine,
          label: hopLabel,
          user: "nodeforge-hostkeys",
          hostKey: request.pinned ?? "",
          privateKey: "",
          timeoutSeconds: request.timeoutSeconds,
        };
        throw describeConnectError(hop, error);
      }
    }
    if (!captured) throw new Error(`${request.machine}: ${hopLabel} completed a handshake without showing a host key`);
    return { line: hostKeyLine(captured), type: blobKeyType(captured), fingerprint: fingerprintOf(captured) };
  } finally {
    ssh.dispose();
    bastion?.dispose();
  }
}
