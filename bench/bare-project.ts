/**
 * The bare program (bare-program.ts) as a Pulumi project of its own, run by the real CLI the way nodeforge's is:
 * built JavaScript, local file backend, this project's node_modules. What any Pulumi program with that many
 * resources costs here: the floor nodeforge's figures are read against.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalWorkspace, PulumiCommand, type Stack } from "@pulumi/pulumi/automation";
import ts from "typescript";
import { projectRoot } from "../modules/project-root";
import { engineEnv, pulumiRoot } from "../test/harness/pulumi-engine";
import { bareProgramSource } from "./bare-program";

/** Runs `use` on a new stack of the bare program (`count` resources, each carrying `payloadBytes`), then removes it. */
export async function withBareStack<T>(
  count: number,
  payloadBytes: number,
  use: (stack: Stack) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "nodeforge-bare-"));
  try {
    const project = join(dir, "project");
    mkdirSync(project);
    writeFileSync(
      join(project, "Pulumi.yaml"),
      "name: bare\nruntime:\n  name: nodejs\n  options:\n    typescript: false\nmain: index.js\n",
    );
    const compiled = ts.transpileModule(bareProgramSource(count, payloadBytes), {
      compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, esModuleInterop: true },
    });
    writeFileSync(join(project, "index.js"), compiled.outputText);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "bare", private: true }));
    symlinkSync(join(projectRoot(), "node_modules"), join(project, "node_modules"));
    mkdirSync(join(dir, "state"));
    const pulumiCommand = await PulumiCommand.get({ root: pulumiRoot() });
    const stack = await LocalWorkspace.createStack(
      { stackName: "bare", workDir: project },
      { workDir: project, pulumiHome: join(dir, "home"), envVars: engineEnv(join(dir, "state")), pulumiCommand },
    );
    return await use(stack);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Seconds `run` takes. */
export async function seconds(run: () => Promise<unknown>): Promise<number> {
  const started = Date.now();
  await run();
  return (Date.now() - started) / 1000;
}
