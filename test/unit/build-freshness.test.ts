/**
 * The engine runs nodeforge's build (program and dynamic providers): a checkout whose sources are newer than its
 * build, or a project where the providers do not resolve, is refused with what to do, before any resource.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { buildProblem } from "../../modules/build-freshness";

const work = mkdtempSync(join(tmpdir(), "nodeforge-freshness-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** A nodeforge checkout: package.json with the providers' export, a source, and (optionally) the build. */
function checkout(name: string, built: boolean): { root: string; source: string; providers: string } {
  const root = join(work, name);
  mkdirSync(join(root, "modules", "remote"), { recursive: true });
  const manifest = { name: "nodeforge", exports: { "./providers": "./build/modules/providers.js" } };
  writeFileSync(join(root, "package.json"), JSON.stringify(manifest));
  const source = join(root, "modules", "remote", "machine-step.ts");
  writeFileSync(source, "export {};\n");
  const providers = join(root, "build", "modules", "providers.js");
  if (built) {
    mkdirSync(join(root, "build", "modules"), { recursive: true });
    writeFileSync(providers, "module.exports = {};\n");
  }
  return { root, source, providers };
}

const at = (path: string, seconds: number) => utimesSync(path, seconds, seconds);

test("a build newer than every source: nothing to say, from the project and from a folder inside it", () => {
  const { root, source, providers } = checkout("fresh", true);
  at(source, 1_000);
  at(providers, 2_000);
  assert.equal(buildProblem(root, root), undefined);
  // A program of its own inside the package (test/programs/composed): the package resolves itself by name.
  mkdirSync(join(root, "programs", "composed"), { recursive: true });
  assert.equal(buildProblem(root, join(root, "programs", "composed")), undefined);
});

test("a source edited after the build: names the source and says to build", () => {
  const { root, source, providers } = checkout("stale", true);
  at(providers, 1_000);
  at(source, 2_000);
  assert.equal(
    buildProblem(root, root),
    `${source} is newer than the build the engine would run (${providers}): run \`npm run build\``,
  );
  // The program's own index.ts counts as much.
  at(source, 500);
  writeFileSync(join(root, "index.ts"), "export {};\n");
  assert.match(buildProblem(root, root) ?? "", /index\.ts is newer than the build/);
});

test("no build: the providers do not resolve, and the message says what to do", () => {
  const { root } = checkout("unbuilt", false);
  assert.match(
    buildProblem(root, root) ?? "",
    /^its dynamic providers \(nodeforge\/providers\) do not resolve from .*unbuilt \(.*\): run `npm run build` in nodeforge, or install it as a dependency$/s,
  );
});

test("an installed package (no sources beside its build) is trusted as built", () => {
  const project = join(work, "user-project");
  const installed = join(project, "node_modules", "nodeforge");
  mkdirSync(join(installed, "build", "modules"), { recursive: true });
  const manifest = { name: "nodeforge", exports: { "./providers": "./build/modules/providers.js" } };
  writeFileSync(join(installed, "package.json"), JSON.stringify(manifest));
  writeFileSync(join(installed, "build", "modules", "providers.js"), "module.exports = {};\n");
  assert.equal(buildProblem(installed, project), undefined);
});
