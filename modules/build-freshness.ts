/**
 * Whether the engine would run the code the sources say: nodeforge's dynamic providers are loaded by the engine
 * from the built package (provider-reference.ts), and the program itself is build/index.js (Pulumi.yaml). In a
 * checkout (TypeScript sources beside the build), a source newer than the build means `npm run build` is due.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

/** The package path the providers are loaded from (package.json "exports"). */
export const PROVIDERS_MODULE = "nodeforge/providers";

interface Dated {
  file: string;
  mtimeMs: number;
}

/** The most recently modified TypeScript source under `dir` (declaration files aside). */
function newestSource(dir: string): Dated {
  let newest: Dated = { file: "", mtimeMs: 0 };
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const found = entry.isDirectory()
      ? newestSource(path)
      : entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")
        ? { file: path, mtimeMs: statSync(path).mtimeMs }
        : newest;
    if (found.mtimeMs > newest.mtimeMs) newest = found;
  }
  return newest;
}

/**
 * What is wrong with the build the engine would run, or undefined: the providers do not resolve from `cwd` (the
 * Pulumi project's directory, where the engine's dynamic-provider host runs), or `root` (the nodeforge package) holds
 * sources newer than that build.
 */
export function buildProblem(root: string, cwd: string): string | undefined {
  let built: string;
  try {
    built = createRequire(join(cwd, "pulumi-program.js")).resolve(PROVIDERS_MODULE);
  } catch (error) {
    return (
      `its dynamic providers (${PROVIDERS_MODULE}) do not resolve from ${cwd} (${(error as Error).message}): ` +
      "run `npm run build` in nodeforge, or install it as a dependency"
    );
  }
  const sources = join(root, "modules");
  if (!existsSync(sources)) return undefined;
  const program = join(root, "index.ts");
  const dated = [
    newestSource(sources),
    ...(existsSync(program) ? [{ file: program, mtimeMs: statSync(program).mtimeMs }] : []),
  ];
  const newest = dated.reduce((a, b) => (b.mtimeMs > a.mtimeMs ? b : a));
  if (newest.mtimeMs <= statSync(built).mtimeMs) return undefined;
  return `${newest.file} is newer than the build the engine would run (${built}): run \`npm run build\``;
}
