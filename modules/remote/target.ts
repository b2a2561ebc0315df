/**
 * What the dynamic providers (RemoteScript, RemoteFile, UnitState) share about their `target` input: its checks and how a
 * change to it is judged. Functions and constants only (closure serialization, see session.ts).
 */
import { parseHostKey } from "./host-key";
import type { SshTarget } from "./types";

/** The engine's placeholder for a value not known during preview. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/**
 * Problems with a target's pinned host keys and sudo password, for `check` (shared with UnitState). Never
 * quotes the password or a private key.
 */
export function targetFailures(target: SshTarget | undefined): { property: string; reason: string }[] {
  const failures: { property: string; reason: string }[] = [];
  const known = (value: unknown): value is string => typeof value === "string" && value !== UNKNOWN;
  const pins: [string, unknown][] = [
    ["hostKey", target?.hostKey],
    ["bastion.hostKey", target?.bastion?.hostKey],
  ];
  for (const [field, hostKey] of pins) {
    if (!known(hostKey)) continue;
    try {
      parseHostKey(hostKey);
    } catch (error) {
      failures.push({ property: "target", reason: `${field}: ${(error as Error).message}` });
    }
  }
  if (known(target?.sudoPassword) && /[\r\n]/.test(target.sudoPassword)) {
    failures.push({ property: "target", reason: "sudoPassword: must be a single line" });
  }
  return failures;
}

/** Target fields that identify the machine: a change means what the resource manages lives somewhere else. */
export const MACHINE_FIELDS = ["machine", "host", "port"] as const;
/** Target fields that are only how we get in (credentials, key rotation, bastion): never a reason to touch the machine. */
const ACCESS_FIELDS = [
  "user",
  "privateKey",
  "hostKey",
  "sudo",
  "sudoPassword",
  "connectTimeoutSeconds",
  "retries",
  "bastion",
] as const;

/** Whether the way in changed: a changed field, or a bastion added, removed or changed. */
export function accessChanged(olds: SshTarget | undefined, news: SshTarget | undefined): boolean {
  return ACCESS_FIELDS.some((field) => JSON.stringify(olds?.[field]) !== JSON.stringify(news?.[field]));
}
