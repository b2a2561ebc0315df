import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import {
  fileContent,
  generateClusterSecrets,
  isSecretFile,
  planCluster,
  scriptText,
  stepsOn,
  usesSecrets,
} from "../plan";
import { formatIssue, loadStackFile, StackValidationError, type StackSpec } from "../stack";

/** One step as render writes it: its files with their content, its scripts. */
interface RenderedStep {
  name: string;
  title: string;
  files: { path: string; mode: string; owner: string; group: string; content: string; secret: boolean }[];
  script: string;
  deleteScript: string;
}

/** Every planned step that runs on the machine, in plan order: its node (or etcd member) steps, then the cluster's. */
function machineSteps(spec: StackSpec, machineName: string): RenderedStep[] {
  const steps = stepsOn(planCluster(spec), machineName);
  // Files made of the cluster's secrets hold a throwaway PKI's, made here and gone with the output.
  const secrets = steps.some(usesSecrets) ? generateClusterSecrets(spec) : undefined;
  return steps.map((step) => ({
    // The id without the machine's name: `upgrade-drain-worker-1` tells one worker's drain from another's.
    name: step.id.slice(machineName.length + 1),
    title: step.title,
    files: step.files.map((f) => ({
      path: f.path,
      mode: f.mode,
      owner: f.owner,
      group: f.group,
      content: "text" in f.content ? f.content.text : fileContent(f, secrets!),
      secret: isSecretFile(f),
    })),
    script: typeof step.script === "string" ? step.script : scriptText(step.script, secrets!),
    deleteScript: step.deleteScript,
  }));
}

/**
 * `nodeforge render FILE --machine NAME [--out DIR]`: writes what would go onto the machine, for review:
 * DIR/files/<absolute path> (each managed file), DIR/steps/NN-<step>.sh and NN-<step>.delete.sh, and
 * DIR/MANIFEST listing every file's mode and owner. Every step that runs on the machine is there: its node
 * steps, then the cluster's steps that run on it. Files made of the cluster's secrets hold a throwaway PKI's
 * (marked `secret` in MANIFEST, written mode 0600).
 */
export function renderCommand(
  file: string,
  machineName: string,
  outDir: string,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): number {
  let spec;
  try {
    spec = loadStackFile(file);
  } catch (error) {
    if (!(error instanceof StackValidationError)) throw error;
    for (const issue of error.issues) err.write(`${formatIssue(issue)}\n`);
    return 2;
  }
  const names = [...spec.machines, ...(spec.etcd?.external.machines ?? []), ...spec.hypervisors].map((m) => m.name);
  if (!names.includes(machineName)) {
    err.write(`${file}: no machine named '${machineName}'; machines: ${names.join(", ")}\n`);
    return 2;
  }
  const manifest: string[] = [];
  const write = (path: string, content: string, mode: number) => {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content, { mode });
    // The mode applies to new files only: a file of an earlier render keeps its own otherwise.
    chmodSync(path, mode);
  };
  machineSteps(spec, machineName).forEach((step, index) => {
    const prefix = `${String(index + 1).padStart(2, "0")}-${step.name}`;
    write(join(outDir, "steps", `${prefix}.sh`), step.script, 0o755);
    manifest.push(`step ${prefix}: ${step.title}`);
    if (step.deleteScript !== "") write(join(outDir, "steps", `${prefix}.delete.sh`), step.deleteScript, 0o755);
    for (const managed of step.files) {
      write(join(outDir, "files", managed.path), managed.content, managed.secret ? 0o600 : 0o644);
      const owner = `mode ${managed.mode} owner ${managed.owner}:${managed.group}`;
      manifest.push(`  file ${managed.path} ${owner}${managed.secret ? " secret (throwaway value)" : ""}`);
    }
  });
  write(join(outDir, "MANIFEST"), `${manifest.join("\n")}\n`, 0o644);
  out.write(`${machineName}: wrote ${manifest.length} entries to ${outDir}\n`);
  return 0;
}
