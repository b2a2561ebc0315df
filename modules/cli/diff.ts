/**
 * `nodeforge diff OLD NEW`: what changing a stack file from OLD to NEW does, read from the two plans (no Pulumi, no
 * SSH, no state), for reviewers of a pull request. Exit 0: nothing changes; 1: something changes; 2: a file is
 * invalid, the change is one nodeforge refuses (checkTransition), or no plan can be made.
 */
import { planCluster, type ClusterSecrets, type PlannedStep } from "../plan";
import { checkTransition, formatIssue, loadStackFile, StackValidationError, type StackSpec } from "../stack";
import { formatPlanDiff } from "./format-diff";
import { pairSecrets } from "./pair-secrets";
import { diffPlans, hasChanges } from "./plan-diff";

export interface DiffOptions {
  /** The throwaway secrets both plans are rendered with (tests); generated for the pair when absent. */
  secrets?: ClusterSecrets;
}

/** The stack file, or undefined once its problems are written to `err` (as `nodeforge validate` writes them). */
function load(file: string, err: NodeJS.WritableStream): StackSpec | undefined {
  try {
    return loadStackFile(file);
  } catch (error) {
    if (!(error instanceof StackValidationError)) throw error;
    for (const issue of error.issues) err.write(`${formatIssue(issue)}\n`);
    err.write(`${file}: ${error.issues.length} problem(s)\n`);
    return undefined;
  }
}

/** The stack's plan, or undefined once why there is none is written to `err`. */
function plan(spec: StackSpec, err: NodeJS.WritableStream): PlannedStep[] | undefined {
  try {
    return planCluster(spec);
  } catch (error) {
    err.write(`${spec.file}: ${(error as Error).message}\n`);
    return undefined;
  }
}

export function diffCommand(
  oldFile: string,
  newFile: string,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
  options: DiffOptions = {},
): number {
  const previous = load(oldFile, err);
  const next = load(newFile, err);
  if (!previous || !next) return 2;
  const refused = checkTransition(previous, next);
  if (refused.length > 0) {
    for (const issue of refused) err.write(`${formatIssue(issue)}\n`);
    err.write(`${newFile}: ${refused.length} change(s) refused\n`);
    return 2;
  }
  const [oldPlan, newPlan] = [plan(previous, err), plan(next, err)];
  if (!oldPlan || !newPlan) return 2;
  let report: string;
  let changes: boolean;
  try {
    const secrets = options.secrets ?? pairSecrets(previous, next);
    const diff = diffPlans({ spec: previous, plan: oldPlan }, { spec: next, plan: newPlan }, secrets);
    [report, changes] = [formatPlanDiff(diff, oldFile, newFile), hasChanges(diff)];
  } catch (error) {
    // Not 1, which says "something changes".
    err.write(`nodeforge diff: ${oldFile} -> ${newFile}: ${(error as Error).message}\n`);
    return 2;
  }
  out.write(report);
  return changes ? 1 : 0;
}
