/**
 * Test code shared by the provisioning tests and benchmark: a stack file for harness machines and small checks
 * run inside machines.
 */
import assert from "node:assert/strict";
import type { CniPlugin } from "../../modules/pins";
import { shellWords } from "../../modules/render/shell";
import { parseStack, type StackSpec } from "../../modules/stack";
import { labStackYaml } from "./lab-stack";
import type { Lab, Machine } from "./machines";

/** The stack file a user would write for these machines: pinned host keys, the lab's mirrors. */
export function labStack(lab: Lab, extra = ""): StackSpec {
  return parseStack(labStackYaml(lab, { extra }), "lab.yaml");
}

/** A `cni:` block selecting `plugin` from the lab's artifact mirror (its test-double manifest and checksum). */
export function labCniYaml(lab: Lab, plugin: CniPlugin): string {
  const { manifestUrl, sha256 } = lab.artifacts.cni[plugin];
  return `cni:\n  plugin: ${plugin}\n  manifestUrl: ${manifestUrl}\n  sha256: ${sha256}\n`;
}

/** Runs a command in the machine; fails the test with its output when it exits non-zero. */
export async function inMachine(machine: Machine, command: string): Promise<string> {
  const result = await machine.run(command, { timeoutMs: 120_000 });
  assert.equal(result.code, 0, `${machine.name}: ${command} exited ${result.code}:\n${result.stdout}${result.stderr}`);
  return result.stdout;
}

/**
 * Runs `command` in the machine every 2 s until it exits 0 with some output, and returns that output; fails the
 * test after `seconds`, with what the command last said. For the state of a cluster that converges (Ready nodes,
 * running pods).
 */
export async function untilOutput(machine: Machine, command: string, what: string, seconds = 240): Promise<string> {
  let last = "";
  for (let waited = 0; waited < seconds; waited += 2) {
    const result = await machine.run(command, { timeoutMs: 30_000 });
    if (result.code === 0 && result.stdout.trim() !== "") return result.stdout;
    last = result.stdout + result.stderr;
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
  return assert.fail(`${machine.name}: ${what} within ${seconds} s; last output:\n${last}`);
}

/** Modification times (ns) of the given paths, `path mtime` per line; missing paths say `missing`. */
export function mtimes(machine: Machine, paths: string[]): Promise<string> {
  const list = shellWords(paths);
  return inMachine(
    machine,
    `for p in ${list}; do printf '%s %s\\n' "$p" "$(stat -c %.9Y "$p" 2>/dev/null || echo missing)"; done`,
  );
}

/** When the unit last entered `active` (monotonic µs): unchanged means not restarted. */
export async function activeSince(machine: Machine, unit: string): Promise<string> {
  return (await inMachine(machine, `systemctl show -p ActiveEnterTimestampMonotonic --value ${unit}`)).trim();
}
