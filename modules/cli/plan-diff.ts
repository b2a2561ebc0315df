/**
 * What changes between two plans (modules/plan `planCluster`), as data for `nodeforge diff`: per machine, the steps
 * added, removed and changed (which files, the script, triggers, units), each changed file's mode, owner and a
 * unified diff of its content, what restarts, and the order the changed steps run in. Pure: both plans are rendered
 * with the same secrets, and every secret is masked before anything is compared line by line.
 */
import { structuredPatch, type StructuredPatchHunk } from "diff";
import {
  fileContent,
  isSecretFile,
  scriptText,
  type ClusterSecrets,
  type PlannedFile,
  type PlannedStep,
} from "../plan";
import { isControlPlane, type Role, type StackSpec } from "../stack";
import type { StepUnit } from "../steps";
import { secretMasker } from "./mask-secrets";
import { scriptRestarts, vmRestarts, type Restart } from "./restarts";

export type { Restart };

/** Lines of context around each change in a unified diff. */
export const CONTEXT_LINES = 3;

export type Change = "added" | "removed" | "changed";

export interface FileMeta {
  mode: string;
  owner: string;
  group: string;
}

/** Content the diff cannot show: a secret, or one of the cluster's certificates (throwaway in a diff). */
export type HiddenContent = "secret" | "certificate";

export interface FileChange {
  path: string;
  change: Change;
  /** Mode and owner before (changed, removed) and after (changed, added). */
  before?: FileMeta;
  after?: FileMeta;
  /** An added file: its size in bytes when it is plain text. */
  size?: number;
  /** An added file made of the cluster's secrets: what it holds instead of a size. */
  madeOf?: string;
  /**
   * A changed file's content: the unified diff's hunks (secrets masked), or what it is when nothing can be shown;
   * absent when only its mode or owner changed.
   */
  content?: { hunks: StructuredPatchHunk[] } | { hidden: HiddenContent };
}

/** What may differ in a step present on both sides. */
export type Aspect = "files" | "script" | "triggers" | "units" | "delete script";

export interface StepChange {
  id: string;
  step: string;
  machine: string;
  title: string;
  change: Change;
  /** A changed step: what differs. */
  aspects: Aspect[];
  /** Added, removed and changed files (every file of an added or removed step). */
  files: FileChange[];
  /** A changed script's hunks (secrets masked). */
  script?: StructuredPatchHunk[];
  /** A changed delete script's hunks (it runs when the step goes away: destroy, or its machine dropped). */
  deleteScript?: StructuredPatchHunk[];
  triggers?: { before: string[]; after: string[] };
  units?: { before: readonly StepUnit[]; after: readonly StepUnit[] };
  /** The units the step manages (the new side's; the old one's for a removed step). */
  manages: readonly StepUnit[];
  /** Whether `pulumi up` runs the step's script: a new step, or its script, a trigger or a file changed. */
  runs: boolean;
  /** What that run restarts. */
  restarts: Restart[];
  /** The ids of the steps it comes after (the new plan's; the old one's for a removed step). */
  after: string[];
  /** A removed step: whether a delete script runs. */
  deletes: boolean;
}

export type MachineKind =
  { kind: "node"; role: Role; hypervisor?: string } | { kind: "etcd" } | { kind: "hypervisor"; vms: string[] };

export interface MachineChange {
  name: string;
  machine: MachineKind;
  change: Change;
  /** Its steps that change, in plan order (a removed one where it was). */
  steps: StepChange[];
}

/** One line of the rollout: a step that runs (or is deleted), and what it waits for. */
export interface RolloutEntry {
  id: string;
  machine: string;
  change: Change;
  /** The steps it comes after, each with whether it changes too. */
  after: { id: string; changes: boolean }[];
}

export interface PlanDiff {
  /** The machines that change, in stack order: nodes (VMs after the listed machines), etcd members, hypervisors. */
  machines: MachineChange[];
  /** How many machines either stack has. */
  machineCount: number;
  /** How many steps either plan has. */
  stepCount: number;
  /**
   * The added and changed steps in the new plan's order, then the removed ones in the order Pulumi deletes them
   * (once the update is done, the steps that come after others first).
   */
  rollout: RolloutEntry[];
}

/** One side of the comparison: a stack and its plan. */
export interface PlanSide {
  spec: StackSpec;
  plan: readonly PlannedStep[];
}

/** `next` in its order, with each name only in `previous` placed after the one it followed there. */
export function mergeOrder(next: readonly string[], previous: readonly string[]): string[] {
  const out = [...next];
  let at = 0;
  for (const name of previous) {
    const found = out.indexOf(name);
    if (found >= 0) at = found + 1;
    else out.splice(at++, 0, name);
  }
  return out;
}

function machineNames(spec: StackSpec): string[] {
  return [...spec.machines, ...(spec.etcd?.external.machines ?? []), ...spec.hypervisors].map((m) => m.name);
}

function machineKind(spec: StackSpec, name: string): MachineKind | undefined {
  const node = spec.machines.find((m) => m.name === name);
  if (node) return { kind: "node", role: node.role, ...(node.vm ? { hypervisor: node.vm.hypervisor } : {}) };
  if (spec.etcd?.external.machines.some((m) => m.name === name)) return { kind: "etcd" };
  const hypervisor = spec.hypervisors.find((h) => h.name === name);
  return hypervisor ? { kind: "hypervisor", vms: hypervisor.vms } : undefined;
}

const meta = (f: PlannedFile): FileMeta => ({ mode: f.mode, owner: f.owner, group: f.group });
const sameMeta = (a: FileMeta, b: FileMeta) => a.mode === b.mode && a.owner === b.owner && a.group === b.group;
const sameList = (a: readonly unknown[], b: readonly unknown[]) => JSON.stringify(a) === JSON.stringify(b);

/** Compares two plans rendered with the same `secrets` (generated for both stacks: see pairSecrets). */
export function diffPlans(previous: PlanSide, next: PlanSide, secrets: ClusterSecrets): PlanDiff {
  const mask = secretMasker(secrets);
  const raw = (f: PlannedFile) => fileContent(f, secrets);
  /** What the diff may show of a file: its text (secrets masked), or what it is. */
  const shown = (f: PlannedFile): { text: string } | { hidden: HiddenContent } => {
    if ("text" in f.content) return { text: f.content.text };
    if ("secretName" in f.content) return { hidden: isSecretFile(f) ? "secret" : "certificate" };
    return { text: mask(raw(f)) };
  };
  const hunks = (path: string, before: string, after: string) =>
    structuredPatch(path, path, before, after, undefined, undefined, { context: CONTEXT_LINES }).hunks;

  const addedFile = (f: PlannedFile): FileChange => {
    const { content } = f;
    const base = { path: f.path, change: "added" as const, after: meta(f) };
    if ("text" in content) return { ...base, size: Buffer.byteLength(content.text, "utf8") };
    if ("secretName" in content) {
      return { ...base, madeOf: `${isSecretFile(f) ? "secret: " : ""}the cluster's ${content.secretName}` };
    }
    if (isSecretFile(f)) return { ...base, madeOf: "secret: made of the cluster's secrets" };
    // A public file made of the secrets: its size when it names none of them (it reads the same with any).
    const text = raw(f);
    return text === mask(text)
      ? { ...base, size: Buffer.byteLength(text, "utf8") }
      : { ...base, madeOf: "holds the cluster's certificates" };
  };

  const fileChanges = (before: PlannedStep | undefined, after: PlannedStep | undefined): FileChange[] => {
    const olds = new Map((before?.files ?? []).map((f) => [f.path, f]));
    const news = new Map((after?.files ?? []).map((f) => [f.path, f]));
    const changes: FileChange[] = [];
    for (const path of mergeOrder([...news.keys()], [...olds.keys()])) {
      const [was, is] = [olds.get(path), news.get(path)];
      if (!was) changes.push(addedFile(is!));
      else if (!is) changes.push({ path, change: "removed", before: meta(was) });
      else {
        const contentChanged = raw(was) !== raw(is);
        if (!contentChanged && sameMeta(meta(was), meta(is))) continue;
        const change: FileChange = { path, change: "changed", before: meta(was), after: meta(is) };
        if (contentChanged) {
          const [a, b] = [shown(was), shown(is)];
          const found = "text" in a && "text" in b ? hunks(path, a.text, b.text) : [];
          const hidden: HiddenContent = isSecretFile(was) || isSecretFile(is) ? "secret" : "certificate";
          // Masked texts that read the same differ only in secret values.
          change.content = found.length > 0 ? { hunks: found } : { hidden };
        }
        changes.push(change);
      }
    }
    return changes;
  };

  const oldMachines = new Set(previous.plan.map((s) => s.machine));
  const controlPlanes = new Set(next.spec.machines.filter(isControlPlane).map((m) => m.name));
  const stepChange = (before: PlannedStep | undefined, after: PlannedStep | undefined): StepChange | undefined => {
    const step = (after ?? before)!;
    const files = fileChanges(before, after);
    const base = {
      id: step.id,
      step: step.step,
      machine: step.machine,
      title: step.title,
      files,
      manages: step.units,
      after: step.after,
    };
    if (!before || !after) {
      const added = !before;
      const addedToMachine = added && oldMachines.has(step.machine);
      return {
        ...base,
        change: added ? "added" : "removed",
        aspects: [],
        runs: added,
        // A new step on a machine that stays runs for the first time: what its script restarts, restarts.
        restarts: addedToMachine
          ? scriptRestarts("", scriptText(step.script, secrets), step.units, controlPlanes.has(step.machine))
          : [],
        deletes: !added && step.deleteScript !== "",
      };
    }
    const [oldScript, newScript] = [scriptText(before.script, secrets), scriptText(after.script, secrets)];
    const aspects: Aspect[] = [];
    if (files.length > 0) aspects.push("files");
    if (oldScript !== newScript) aspects.push("script");
    if (!sameList(before.triggers, after.triggers)) aspects.push("triggers");
    if (!sameList(before.units, after.units)) aspects.push("units");
    if (before.deleteScript !== after.deleteScript) aspects.push("delete script");
    if (aspects.length === 0) return undefined;
    const runs = aspects.some((a) => a === "files" || a === "script" || a === "triggers");
    const changedPaths = files.filter((f) => f.change !== "removed").map((f) => f.path);
    return {
      ...base,
      change: "changed",
      aspects,
      ...(oldScript !== newScript ? { script: hunks("script", mask(oldScript), mask(newScript)) } : {}),
      ...(aspects.includes("delete script")
        ? { deleteScript: hunks("delete script", mask(before.deleteScript), mask(after.deleteScript)) }
        : {}),
      ...(aspects.includes("triggers") ? { triggers: { before: before.triggers, after: after.triggers } } : {}),
      ...(aspects.includes("units") ? { units: { before: before.units, after: after.units } } : {}),
      runs,
      restarts: runs
        ? [
            ...scriptRestarts(oldScript, newScript, after.units, controlPlanes.has(after.machine)),
            ...vmRestarts(next.spec, after, changedPaths),
          ]
        : [],
      deletes: false,
    };
  };

  const olds = new Map(previous.plan.map((s) => [s.id, s]));
  const news = new Map(next.plan.map((s) => [s.id, s]));
  const changes = new Map<string, StepChange>();
  for (const id of mergeOrder([...news.keys()], [...olds.keys()])) {
    const change = stepChange(olds.get(id), news.get(id));
    if (change) changes.set(id, change);
  }

  const oldNames = machineNames(previous.spec);
  const newNames = machineNames(next.spec);
  const byMachine = new Map<string, StepChange[]>();
  for (const change of changes.values()) {
    byMachine.set(change.machine, [...(byMachine.get(change.machine) ?? []), change]);
  }
  const machines: MachineChange[] = [];
  for (const name of mergeOrder(newNames, oldNames)) {
    const steps = byMachine.get(name);
    if (!steps) continue;
    const inNew = newNames.includes(name);
    const inOld = oldNames.includes(name);
    machines.push({
      name,
      machine: (inNew ? machineKind(next.spec, name) : machineKind(previous.spec, name))!,
      change: inNew && inOld ? "changed" : inNew ? "added" : "removed",
      steps,
    });
  }

  const entry = (c: StepChange): RolloutEntry => ({
    id: c.id,
    machine: c.machine,
    change: c.change,
    after: c.after.map((id) => ({ id, changes: changes.has(id) })),
  });
  const running = next.plan.filter((s) => changes.has(s.id)).map((s) => entry(changes.get(s.id)!));
  const deleted = [...previous.plan]
    .reverse()
    .filter((s) => changes.get(s.id)?.change === "removed")
    .map((s) => entry(changes.get(s.id)!));

  return {
    machines,
    machineCount: new Set([...oldNames, ...newNames]).size,
    stepCount: new Set([...olds.keys(), ...news.keys()]).size,
    rollout: [...running, ...deleted],
  };
}

/** Whether anything changes. */
export function hasChanges(diff: PlanDiff): boolean {
  return diff.machines.length > 0;
}
