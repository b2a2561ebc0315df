/**
 * Test code: plays the Pulumi engine's part of `pulumi up` and `pulumi destroy` for the resources a program
 * registered under mocks (the Pulumi CLI cannot run here). For each custom resource, in dependency order and
 * in parallel where the graph allows, it does what the engine and the providers would:
 *   - RemoteFile and UnitState (dynamic resources): check, then create, or diff + update/replace, or delete,
 *     on the dynamic provider as the engine receives it (after closure serialization);
 *   - remote.Command: like @pulumi/command 1.x (command-dial.ts), one SSH connection per operation with the
 *     pinned host keys (through the proxy when there is one), the `create` command on create, `update` when any
 *     input changed, `delete` on destroy; stdin fed.
 * State lives in a plain object the test keeps between runs, like a stack's checkpoint.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { remoteFileProvider } from "../../modules/remote/remote-file";
import { unitStateProvider } from "../../modules/remote/unit-state";
import { runLikePulumiCommand, type CommandConnection } from "./command-dial";
import type { CapturedResource } from "./pulumi-mocks";
import { outputValue } from "./pulumi-mocks";

export const FILE_TYPE = "pulumi-nodejs:dynamic/nodeforge:RemoteFile";
export const UNIT_TYPE = "pulumi-nodejs:dynamic/nodeforge:UnitState";
export const COMMAND_TYPE = "command:remote:Command";

/** The dynamic providers' common shape, as the engine calls them (inputs and outputs are plain objects). */
interface DynamicProvider {
  check(olds: never, news: never): Promise<{ inputs?: unknown; failures?: unknown[] }>;
  diff(id: string, olds: never, news: never): Promise<{ changes?: boolean; replaces?: string[] }>;
  create(inputs: never): Promise<{ id: string; outs: unknown }>;
  update(id: string, olds: never, news: never): Promise<{ outs?: unknown }>;
  delete(id: string, props: never): Promise<void>;
}

const PROVIDERS: Record<string, unknown> = { [FILE_TYPE]: remoteFileProvider, [UNIT_TYPE]: unitStateProvider };

interface StateEntry {
  type: string;
  id: string;
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown>;
  /** Names of resources this one depends on, for destroy order. */
  dependsOn: string[];
}

export interface ReplayState {
  resources: Map<string, StateEntry>;
}

export type Operation = "create" | "update" | "replace" | "same" | "delete";

export interface ReplayReport {
  /** Every resource's operation, with its start and end in seconds since the run began. */
  operations: { name: string; op: Operation; start: number; end: number }[];
  seconds: number;
  /** SSH connections opened for remote.Command operations (RemoteFile's come from its own pool). */
  commandConnections: number;
}

export class ReplayError extends Error {
  constructor(
    readonly failures: { name: string; error: Error }[],
    readonly report: ReplayReport,
  ) {
    super(failures.map((f) => `${f.name}: ${f.error.message}`).join("\n"));
  }
}

export function emptyState(): ReplayState {
  return { resources: new Map() };
}

const serializedProviders = new Map<string, DynamicProvider>();

/** A dynamic provider as the engine gets it: serialized by Pulumi's closure serializer, then loaded. */
async function engineProvider(type: string): Promise<DynamicProvider> {
  let provider = serializedProviders.get(type);
  if (!provider) {
    const original = PROVIDERS[type];
    const closure = await pulumi.runtime.serializeFunction(() => original, { allowSecrets: true });
    // Inside the package, so that the provider's require("node-ssh") resolves as it does for the engine.
    const dir = mkdtempSync(join(__dirname, ".serialized-"));
    try {
      const file = join(dir, "provider.js");
      writeFileSync(file, closure.text);
      provider = (require(file) as Record<string, () => DynamicProvider>)[closure.exportName]?.();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    if (!provider) throw new Error(`serialized provider for ${type} did not load`);
    serializedProviders.set(type, provider);
  }
  return provider;
}

/** One remote.Command operation as @pulumi/command 1.x runs it; a non-zero exit fails the operation. */
async function runCommand(line: string, connection: CommandConnection, stdin?: string): Promise<string> {
  const result = await runLikePulumiCommand(connection, line, stdin);
  if (result.code !== 0) throw new Error(`Process exited with status ${result.code}: ${result.stderr.trim()}`);
  return result.stdout;
}

function topological<T extends { name: string; deps: string[] }>(items: T[]): T[] {
  const byName = new Map(items.map((i) => [i.name, i]));
  const done = new Set<string>();
  const out: T[] = [];
  const visit = (item: T) => {
    if (done.has(item.name)) return;
    done.add(item.name);
    for (const dep of item.deps) {
      const d = byName.get(dep);
      if (d) visit(d);
    }
    out.push(item);
  };
  items.forEach(visit);
  return out;
}

/** Runs `work` for every item once its dependencies finished, in parallel otherwise; stops starting new work on failure. */
async function schedule<T extends { name: string; deps: string[] }>(
  items: T[],
  work: (item: T) => Promise<void>,
): Promise<{ name: string; error: Error }[]> {
  const failures: { name: string; error: Error }[] = [];
  const running = new Map<string, Promise<boolean>>();
  for (const item of topological(items)) {
    running.set(
      item.name,
      (async () => {
        const depsOk = await Promise.all(item.deps.map((d) => running.get(d) ?? Promise.resolve(true)));
        if (depsOk.includes(false) || failures.length > 0) return false;
        try {
          await work(item);
          return true;
        } catch (error) {
          failures.push({ name: item.name, error: error as Error });
          return false;
        }
      })(),
    );
  }
  await Promise.all(running.values());
  return failures;
}

/** `pulumi up`: converge the machines to the captured program, updating `state`. */
export async function up(captured: CapturedResource[], state: ReplayState): Promise<ReplayReport> {
  const started = Date.now();
  const names = new Map(captured.map((c) => [c.resource, c.name]));
  const custom = captured.filter((c) => c.type in PROVIDERS || c.type === COMMAND_TYPE);
  const report: ReplayReport = { operations: [], seconds: 0, commandConnections: 0 };
  const items = await Promise.all(
    custom.map(async (c) => ({
      name: c.name,
      type: c.type,
      deps: c.dependsOn.map((d) => names.get(d) ?? "").filter(Boolean),
      inputs: (await outputValue(pulumi.output(c.props))) as Record<string, unknown>,
    })),
  );
  const failures = await schedule(items, async (item) => {
    const start = (Date.now() - started) / 1000;
    const old = state.resources.get(item.name);
    let op: Operation = "same";
    if (item.type in PROVIDERS) {
      const provider = await engineProvider(item.type);
      // Output-only properties the resource class declares as undefined inputs.
      const inputs = Object.fromEntries(Object.entries(item.inputs).filter(([, v]) => v !== undefined));
      const checked = await provider.check((old?.inputs ?? {}) as never, inputs as never);
      if (checked.failures && checked.failures.length > 0) throw new Error(JSON.stringify(checked.failures));
      const news = checked.inputs as never;
      if (!old) {
        const created = await provider.create(news);
        state.resources.set(item.name, {
          type: item.type,
          id: created.id,
          inputs: news,
          outputs: created.outs as never,
          dependsOn: item.deps,
        });
        op = "create";
      } else {
        const diff = await provider.diff(old.id, old.outputs as never, news);
        if (diff.changes && (diff.replaces ?? []).length > 0) {
          await provider.delete(old.id, old.outputs as never);
          const created = await provider.create(news);
          state.resources.set(item.name, { ...old, id: created.id, inputs: news, outputs: created.outs as never });
          op = "replace";
        } else if (diff.changes) {
          const updated = await provider.update(old.id, old.outputs as never, news);
          state.resources.set(item.name, { ...old, inputs: news, outputs: updated.outs as never });
          op = "update";
        }
      }
    } else {
      const inputs = item.inputs;
      const changed = !old || JSON.stringify(old.inputs) !== JSON.stringify(inputs);
      if (changed) {
        const line = String(old ? (inputs.update ?? inputs.create) : inputs.create);
        report.commandConnections++;
        const stdout = await runCommand(
          line,
          inputs.connection as CommandConnection,
          inputs.stdin as string | undefined,
        );
        state.resources.set(item.name, {
          type: item.type,
          id: item.name,
          inputs,
          outputs: { ...inputs, stdout },
          dependsOn: item.deps,
        });
        op = old ? "update" : "create";
      }
    }
    report.operations.push({ name: item.name, op, start, end: (Date.now() - started) / 1000 });
  });
  report.seconds = (Date.now() - started) / 1000;
  if (failures.length > 0) throw new ReplayError(failures, report);
  return report;
}

/** `pulumi destroy`: delete everything in `state`, dependents first. */
export async function destroy(state: ReplayState): Promise<ReplayReport> {
  const started = Date.now();
  const report: ReplayReport = { operations: [], seconds: 0, commandConnections: 0 };
  // Reverse the graph: a resource is deleted once everything that depends on it is gone.
  const dependents = new Map<string, string[]>();
  for (const [name, entry] of state.resources) {
    for (const dep of entry.dependsOn) dependents.set(dep, [...(dependents.get(dep) ?? []), name]);
  }
  const items = [...state.resources.keys()].map((name) => ({ name, deps: dependents.get(name) ?? [] }));
  const failures = await schedule(items, async ({ name }) => {
    const start = (Date.now() - started) / 1000;
    const entry = state.resources.get(name);
    if (!entry) return;
    if (entry.type in PROVIDERS) {
      await (await engineProvider(entry.type)).delete(entry.id, entry.outputs as never);
    } else if (entry.inputs.delete) {
      report.commandConnections++;
      await runCommand(
        String(entry.inputs.delete),
        entry.inputs.connection as CommandConnection,
        entry.inputs.stdin as string | undefined,
      );
    }
    state.resources.delete(name);
    report.operations.push({ name, op: "delete", start, end: (Date.now() - started) / 1000 });
  });
  report.seconds = (Date.now() - started) / 1000;
  if (failures.length > 0) throw new ReplayError(failures, report);
  return report;
}
