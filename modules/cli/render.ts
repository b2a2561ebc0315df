import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { formatIssue, loadStackFile, StackValidationError } from "../stack";
import { planMachine } from "../steps/plan";

/**
 * `nodeforge render FILE --machine NAME [--out DIR]`: writes what would go onto the machine, for review:
 * DIR/files/<absolute path> (each managed file), DIR/steps/NN-<step>.sh and NN-<step>.delete.sh, and
 * DIR/MANIFEST listing every file's mode and owner.
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
  const machine = spec.machines.find((m) => m.name === machineName);
  if (!machine) {
    err.write(`${file}: no machine named '${machineName}'; machines: ${spec.machines.map((m) => m.name).join(", ")}\n`);
    return 2;
  }
  const manifest: string[] = [];
  const write = (path: string, content: string, mode: number) => {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content, { mode });
  };
  planMachine(spec, machine).forEach((planned, index) => {
    const prefix = `${String(index + 1).padStart(2, "0")}-${planned.step.name}`;
    write(join(outDir, "steps", `${prefix}.sh`), planned.script, 0o755);
    manifest.push(`step ${prefix}: ${planned.step.title}`);
    if (planned.deleteScript !== undefined)
      write(join(outDir, "steps", `${prefix}.delete.sh`), planned.deleteScript, 0o755);
    for (const managed of planned.files) {
      write(join(outDir, "files", managed.path), managed.content, 0o644);
      manifest.push(`  file ${managed.path} mode ${managed.mode} owner ${managed.owner}:${managed.group}`);
    }
  });
  write(join(outDir, "MANIFEST"), `${manifest.join("\n")}\n`, 0o644);
  out.write(`${machineName}: wrote ${manifest.length} entries to ${outDir}\n`);
  return 0;
}
