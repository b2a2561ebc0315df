import { formatIssue, loadStackFile, StackValidationError } from "../stack";

/** `nodeforge validate FILE...`: 0 when every file is valid, 2 when any is not (every problem listed). */
export function validateCommand(files: string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream): number {
  let status = 0;
  for (const file of files) {
    try {
      const spec = loadStackFile(file);
      out.write(`${file}: valid (${spec.machines.length} machine(s), Kubernetes ${spec.cluster.kubernetesVersion})\n`);
    } catch (error) {
      if (!(error instanceof StackValidationError)) throw error;
      for (const issue of error.issues) err.write(`${formatIssue(issue)}\n`);
      err.write(`${file}: ${error.issues.length} problem(s)\n`);
      status = 2;
    }
  }
  return status;
}
