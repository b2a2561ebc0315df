#!/usr/bin/env node
/**
 * The `nodeforge` command: offline checks, rendering and diffing of stack files, host key scanning and CNI manifest
 * pinning (provisioning is `pulumi up`). Bad arguments: usage, exit 64.
 */
import { join } from "node:path";
import { cniPinCommand } from "./cni-pin";
import { diffCommand } from "./diff";
import { hostkeysCommand } from "./hostkeys";
import { renderCommand } from "./render";
import { validateCommand } from "./validate";

const USAGE = `usage:
  nodeforge validate FILE...                          check stack files; exit 2 when invalid
  nodeforge render FILE --machine NAME [--out DIR]    write what would go onto a machine (default DIR: rendered/NAME)
  nodeforge diff OLD NEW                              what changing the stack file OLD into NEW does, from the two
                                                      plans: steps, files (secrets masked), restarts, rollout order;
                                                      exit 0 when nothing changes, 1 when something does, 2 when a
                                                      file is invalid or the change is refused
  nodeforge hostkeys FILE [--machine NAME]... [--identity KEYFILE] [--timeout SECONDS]
                                                      scan each machine's SSH host key (through its bastion, logged
                                                      in to with KEYFILE); print the hostKey line to paste, or check
                                                      the pinned one; exit 1 on a mismatch or a failed scan
  nodeforge cni-pin FILE [--out MANIFEST] [--timeout SECONDS]
                                                      download the stack's CNI manifest, print its sha256 and images
                                                      (the cni.sha256 line to add), or check the one it names; exit 1
                                                      on a mismatch or a failed download
`;

function option(args: string[], name: string): string | undefined {
  const at = args.indexOf(name);
  if (at < 0) return undefined;
  const value = args[at + 1];
  args.splice(at, 2);
  return value;
}

/** Every value of a repeatable option. */
function options(args: string[], name: string): string[] {
  const values: string[] = [];
  for (let value = option(args, name); value !== undefined; value = option(args, name)) values.push(value);
  return values;
}

/** `--timeout SECONDS`: absent, or a positive whole number of seconds (timeoutOk false otherwise). */
function timeoutOption(args: string[]): { timeoutSeconds?: number; timeoutOk: boolean } {
  const timeout = option(args, "--timeout");
  if (timeout === undefined) return { timeoutOk: true };
  const timeoutSeconds = Number(timeout);
  return { timeoutSeconds, timeoutOk: Number.isInteger(timeoutSeconds) && timeoutSeconds > 0 };
}

export function main(argv: string[]): number | Promise<number> {
  const [command, ...rest] = argv;
  if (command === "validate" && rest.length > 0) return validateCommand(rest, process.stdout, process.stderr);
  if (command === "render") {
    const machine = option(rest, "--machine");
    const out = option(rest, "--out");
    if (machine && rest.length === 1 && rest[0]) {
      return renderCommand(rest[0], machine, out ?? join("rendered", machine), process.stdout, process.stderr);
    }
  }
  if (command === "diff" && rest.length === 2 && rest.every((arg) => arg !== "" && !arg.startsWith("--"))) {
    return diffCommand(rest[0]!, rest[1]!, process.stdout, process.stderr);
  }
  if (command === "hostkeys") {
    const machines = options(rest, "--machine");
    const identity = option(rest, "--identity");
    const { timeoutSeconds, timeoutOk } = timeoutOption(rest);
    if (rest.length === 1 && rest[0] && !rest[0].startsWith("--") && timeoutOk) {
      return hostkeysCommand(
        rest[0],
        { machines, ...(identity ? { identity } : {}), ...(timeoutSeconds ? { timeoutSeconds } : {}) },
        process.stdout,
        process.stderr,
      );
    }
  }
  if (command === "cni-pin") {
    const out = option(rest, "--out");
    const { timeoutSeconds, timeoutOk } = timeoutOption(rest);
    if (rest.length === 1 && rest[0] && !rest[0].startsWith("--") && timeoutOk) {
      return cniPinCommand(
        rest[0],
        { ...(out ? { out } : {}), ...(timeoutSeconds ? { timeoutSeconds } : {}) },
        process.stdout,
        process.stderr,
      );
    }
  }
  process.stderr.write(USAGE);
  return 64;
}

if (require.main === module) {
  Promise.resolve(main(process.argv.slice(2))).then(
    (code) => (process.exitCode = code),
    (error: Error) => {
      process.stderr.write(`nodeforge: ${error.message}\n`);
      process.exitCode = 1;
    },
  );
}
