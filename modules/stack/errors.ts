/** Errors found in a stack file, each pointing at the file, the place inside it and what is wrong. */

export interface StackIssue {
  file: string;
  /** Dotted path with indexes, e.g. `machines[2].ssh.port`; empty for the document root. */
  path: string;
  message: string;
  /** 1-based position of the offending node in the file, when known. */
  line?: number;
  column?: number;
}

export function formatIssue(issue: StackIssue): string {
  const where = issue.line ? `${issue.file}:${issue.line}:${issue.column ?? 1}` : issue.file;
  return `${where}: ${issue.path || "(document)"}: ${issue.message}`;
}

export class StackValidationError extends Error {
  constructor(readonly issues: StackIssue[]) {
    super(`invalid stack file:\n${issues.map((i) => `  ${formatIssue(i)}`).join("\n")}`);
    this.name = "StackValidationError";
  }
}

/** Turns a list of keys and indexes into `machines[2].ssh.port`. */
export function formatPath(segments: readonly (string | number)[]): string {
  let out = "";
  for (const segment of segments) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}
