/**
 * Benchmark: a real `pulumi preview` (the Pulumi CLI through the Automation API, local file backend) of a
 * 100-machine stack file with this project's index.ts, beside the same CLI previewing a bare TypeScript program
 * that registers as many plain resources (bench/bare-program.ts), run the same way (ts-node). No machine is needed:
 * a preview of a stack never deployed only plans creates. Prints figures; it is not a timed test.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalWorkspace, PulumiCommand } from "@pulumi/pulumi/automation";
import { projectRoot } from "../modules/project-root";
import { changed, engineEnv, engineStack, pulumiRoot } from "../test/harness/pulumi-engine";
import { stackYaml } from "../test/harness/stack-builder";
import { bareProgramSource } from "./bare-program";

const MACHINES = 100;

/** The bare program as a project of its own, its node_modules this project's. */
async function barePreview(count: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "nodeforge-bare-"));
  try {
    const project = join(dir, "project");
    mkdirSync(project);
    const runtime = "runtime:\n  name: nodejs\n  options:\n    typescript: true\n";
    writeFileSync(join(project, "Pulumi.yaml"), `name: bare\n${runtime}main: index.ts\n`);
    writeFileSync(join(project, "index.ts"), bareProgramSource(count));
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "bare", private: true }));
    writeFileSync(
      join(project, "tsconfig.json"),
      // As nodeforge's own tsconfig: ts-node only transpiles (type checking is the build's job).
      JSON.stringify({
        compilerOptions: {
          strict: true,
          target: "ES2022",
          module: "commonjs",
          moduleResolution: "node",
          esModuleInterop: true,
          skipLibCheck: true,
        },
        "ts-node": { transpileOnly: true },
      }),
    );
    symlinkSync(join(projectRoot(), "node_modules"), join(project, "node_modules"));
    mkdirSync(join(dir, "state"));
    const pulumiCommand = await PulumiCommand.get({ root: pulumiRoot() });
    const stack = await LocalWorkspace.createStack(
      { stackName: "bare", workDir: project },
      { workDir: project, pulumiHome: join(dir, "home"), envVars: engineEnv(join(dir, "state")), pulumiCommand },
    );
    const started = Date.now();
    await stack.preview({ color: "never" });
    return (Date.now() - started) / 1000;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const engine = await engineStack(
    stackYaml({ machines: MACHINES }),
    "not a key: a preview of creates connects nowhere",
  );
  try {
    const ours = await engine.preview();
    const resources = changed(ours).length;
    const bare = await barePreview(resources);
    console.log(`real pulumi preview, local backend, ${MACHINES}-machine stack (every resource a create)`);
    console.log("program     resources  seconds");
    console.log(`nodeforge   ${String(resources).padStart(9)}  ${ours.seconds.toFixed(1).padStart(7)}`);
    console.log(`bare        ${String(resources).padStart(9)}  ${bare.toFixed(1).padStart(7)}`);
    console.log(`ratio nodeforge / bare: ${(ours.seconds / bare).toFixed(2)}`);
  } finally {
    await engine.remove();
  }
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
