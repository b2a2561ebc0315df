/** `nodeforge diff`'s text: a PlanDiff (plan-diff.ts) as a reviewer reads it, machine by machine, then the order. */
import type { StructuredPatchHunk } from "diff";
import type { StepUnit } from "../steps";
import type { Change, FileChange, FileMeta, MachineChange, PlanDiff, Restart, StepChange } from "./plan-diff";

const SIGN: Record<Change, string> = { added: "+", removed: "-", changed: "~" };
const HUNK_INDENT = " ".repeat(8);

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const metaText = (m: FileMeta) => `${m.mode} ${m.owner}:${m.group}`;
const unitText = (u: StepUnit) => `${u.name}${u.running ? " (running)" : ""}`;
const restartText = (r: Restart) => `${r.what}${r.ifRunning ? " (if running)" : ""}`;

function hunkLines(hunks: readonly StructuredPatchHunk[]): string[] {
  return hunks.flatMap((h) => [
    `${HUNK_INDENT}@@ -${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@`,
    ...h.lines.map((line) => `${HUNK_INDENT}${line}`),
  ]);
}

function fileLines(file: FileChange): string[] {
  const head = `      ${SIGN[file.change]} ${file.path}`;
  if (file.change === "added") {
    const what = file.size !== undefined ? plural(file.size, "byte") : file.madeOf!;
    return [`${head}  ${metaText(file.after!)}, ${what}`];
  }
  if (file.change === "removed") return [`${head}  (removed)`];
  const notes: string[] = [];
  const [before, after] = [file.before!, file.after!];
  if (before.mode !== after.mode) notes.push(`mode ${before.mode} -> ${after.mode}`);
  if (before.owner !== after.owner || before.group !== after.group) {
    notes.push(`owner ${before.owner}:${before.group} -> ${after.owner}:${after.group}`);
  }
  if (file.content && "hidden" in file.content) notes.push(`${file.content.hidden} content changes (not shown)`);
  const lines = [notes.length > 0 ? `${head}  ${notes.join(", ")}` : head];
  if (file.content && "hunks" in file.content) lines.push(...hunkLines(file.content.hunks));
  return lines;
}

/** What the step's run does to the units it manages. */
function runLine(step: StepChange): string | undefined {
  const parts: string[] = [];
  if (step.change === "changed") {
    parts.push(
      step.runs
        ? "runs again"
        : step.aspects.includes("units")
          ? "the script does not run; its units are enabled (and started) as listed"
          : "nothing runs (recorded for when the step goes away)",
    );
  }
  if (step.restarts.length > 0) parts.push(`restarts ${step.restarts.map(restartText).join(", ")}`);
  const restarted = new Set(step.restarts.map((r) => r.what));
  const kept = step.manages.filter((u) => !restarted.has(u.name));
  if (kept.length > 0 && step.change !== "removed") {
    parts.push(`${step.change === "added" ? "manages" : "does not restart"} ${kept.map((u) => u.name).join(", ")}`);
  }
  return parts.length > 0 ? `      ${parts.join("; ")}` : undefined;
}

/** The step as its machine's section names it: its id without the machine's name (`upgrade-drain-worker-3`). */
function stepName(step: StepChange): string {
  const prefix = `${step.machine}-`;
  return step.id.startsWith(prefix) ? step.id.slice(prefix.length) : step.step;
}

function stepLines(step: StepChange): string[] {
  const what =
    step.change === "added"
      ? step.title
      : step.change === "removed"
        ? step.deletes
          ? "removed, its delete script runs"
          : "removed"
        : step.aspects.join(", ");
  const lines = [`  ${SIGN[step.change]} ${stepName(step)}: ${what}`];
  if (step.change !== "added") lines.push(`      ${step.title}`);
  const run = runLine(step);
  if (run) lines.push(run);
  if (step.triggers) {
    lines.push(`      ~ triggers: ${JSON.stringify(step.triggers.before)} -> ${JSON.stringify(step.triggers.after)}`);
  }
  if (step.units) {
    const list = (units: readonly StepUnit[]) => units.map(unitText).join(", ") || "none";
    lines.push(`      ~ units: ${list(step.units.before)} -> ${list(step.units.after)}`);
  }
  for (const file of step.files) lines.push(...fileLines(file));
  if (step.script) lines.push("      ~ script", ...hunkLines(step.script));
  if (step.deleteScript) {
    lines.push("      ~ delete script (runs when the step goes away)", ...hunkLines(step.deleteScript));
  }
  return lines;
}

function machineHeading(m: MachineChange): string {
  const { machine } = m;
  const kind =
    machine.kind === "node"
      ? machine.role.replace("control-plane", "control plane") +
        (machine.hypervisor ? `, VM on ${machine.hypervisor}` : "")
      : machine.kind === "etcd"
        ? "external etcd member"
        : "hypervisor";
  const counts = (["added", "changed", "removed"] as const)
    .map((c) => [c, m.steps.filter((s) => s.change === c).length] as const)
    .filter(([, n]) => n > 0)
    .map(([c, n]) => `${plural(n, "step")} ${c}`)
    .join(", ");
  const fate =
    m.change === "added"
      ? machine.kind === "node"
        ? "prepared, then joins the cluster; "
        : ""
      : m.change === "removed"
        ? machine.kind === "node"
          ? "drained and its Node deleted (node-registrations), then kubeadm reset and its steps' delete scripts run; "
          : "its steps' delete scripts run; "
        : "";
  return `${m.name} (${kind}${m.change === "changed" ? "" : `, ${m.change}`}): ${fate}${counts}`;
}

function rolloutLines(diff: PlanDiff): string[] {
  if (diff.rollout.length === 0) return [];
  const width = Math.max(...diff.rollout.map((e) => e.id.length));
  return [
    "rollout order (plan order: each step runs after the steps named, * when that one changes too; removed steps " +
      "are deleted last, the later ones first):",
    ...diff.rollout.map((e) => {
      const after = e.after.map((a) => `${a.id}${a.changes ? "*" : ""}`).join(", ");
      const tail = e.change === "removed" ? "deleted" : after ? `after ${after}` : "first";
      return `  ${SIGN[e.change]} ${e.id.padEnd(width)}  ${tail}`;
    }),
  ];
}

function summaryLine(diff: PlanDiff): string {
  const steps = diff.machines.flatMap((m) => m.steps);
  const files = steps.reduce((n, s) => n + s.files.length, 0);
  const byChange = (["added", "changed", "removed"] as const)
    .map((c) => [c, steps.filter((s) => s.change === c).length] as const)
    .filter(([, n]) => n > 0)
    .map(([c, n]) => `${n} ${c}`);
  const restarts = new Map<string, string[]>();
  for (const step of steps) {
    for (const r of step.restarts) {
      const key = restartText(r);
      const on = restarts.get(key) ?? [];
      if (!on.includes(step.machine)) on.push(step.machine);
      restarts.set(key, on);
    }
  }
  const restartList = [...restarts].map(([what, on]) => `${what} on ${on.join(", ")}`).join("; ") || "none";
  const parts = [
    `${plural(diff.machines.length, "machine")} changed`,
    `${plural(steps.length, "step")}${byChange.length > 0 ? ` (${byChange.join(", ")})` : ""}`,
    plural(files, "file"),
    `restarts: ${restartList}`,
  ];
  const joins = diff.machines.filter((m) => m.change === "added" && m.machine.kind === "node").map((m) => m.name);
  const leaves = diff.machines.filter((m) => m.change === "removed" && m.machine.kind === "node").map((m) => m.name);
  const others = (change: Change) =>
    diff.machines.filter((m) => m.change === change && m.machine.kind !== "node").map((m) => m.name);
  if (joins.length > 0) parts.push(`joins: ${joins.join(", ")}`);
  if (leaves.length > 0) parts.push(`drained and reset: ${leaves.join(", ")}`);
  if (others("added").length > 0) parts.push(`added: ${others("added").join(", ")}`);
  if (others("removed").length > 0) parts.push(`removed: ${others("removed").join(", ")}`);
  return `summary: ${parts.join(", ")}`;
}

/** The whole report; `oldFile` and `newFile` as the user named them. */
export function formatPlanDiff(diff: PlanDiff, oldFile: string, newFile: string): string {
  const lines = [`nodeforge diff ${oldFile} ${newFile}`, ""];
  if (diff.machines.length === 0) {
    lines.push(`no changes: the same ${plural(diff.stepCount, "step")} on ${plural(diff.machineCount, "machine")}`, "");
  }
  for (const machine of diff.machines) {
    lines.push(machineHeading(machine));
    for (const step of machine.steps) lines.push(...stepLines(step));
    lines.push("");
  }
  const rollout = rolloutLines(diff);
  if (rollout.length > 0) lines.push(...rollout, "");
  lines.push(summaryLine(diff));
  return `${lines.join("\n")}\n`;
}
