// Which Pulumi stacks a pull request changes the plan of, for .github/workflows/preview.yml.
// Usage (at the repository's root): node .github/preview-stacks.mjs BASE HEAD
//
// A Pulumi stack is a committed Pulumi.<stack>.yaml whose `nodeforge:stackFile` names its stack file. A stack is
// selected when the pull request (git diff BASE...HEAD: what HEAD changed since it left BASE) changes or deletes
// its stack file, or changes its Pulumi.<stack>.yaml; every stack is selected when it changes code every plan is
// made of (modules/, templates/, schemas/, index.ts, the package and build files, this workflow). Prints two lines
// in $GITHUB_OUTPUT's `key=value` form:
//   stacks=[{"stack":"prod","file":"stacks/prod.yaml"},...]  the stacks to preview, each with its stack file
//   files=["stacks/prod.yaml",...]                          the stack files to validate: the changed ones (used by
//                                                            a stack or not; all of stacks/ when code changed) and
//                                                            those of the selected stacks, deleted ones aside
// and what it chose, and why, on standard error.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { posix } from "node:path";

/** Paths whose change changes every stack's plan: a directory (ending in /) or a file. */
const CODE = [
  "modules/",
  "templates/",
  "schemas/",
  "index.ts",
  "Pulumi.yaml",
  "package.json",
  "package-lock.json",
  "tsconfig.json",
  ".github/workflows/preview.yml",
  ".github/preview-stacks.mjs",
];
const STACK_FILE = /^stacks\/.+\.ya?ml$/;
const PULUMI_STACK = /^Pulumi\.([^/]+)\.ya?ml$/;

function git(...args) {
  return execFileSync("git", args, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
}

/** NUL-separated git output as a list. */
function paths(output) {
  return output.split("\0").filter((path) => path !== "");
}

/** A repository-relative path as written in config (`./stacks/a.yaml` is `stacks/a.yaml`). */
function normalize(path) {
  return posix.normalize(path).replace(/^(\.\/)+/, "");
}

/**
 * The value of `nodeforge:stackFile` in a Pulumi.<stack>.yaml, as `pulumi config set` writes it (a plain or quoted
 * scalar under `config:`), or undefined.
 */
function stackFileOf(configFile) {
  for (const line of readFileSync(configFile, "utf8").split(/\r?\n/)) {
    const match = /^\s+(["']?)nodeforge:stackFile\1:\s*(.*?)\s*$/.exec(line);
    if (!match) continue;
    let value = match[2];
    const quoted = /^"((?:[^"\\]|\\.)*)"|^'((?:[^']|'')*)'/.exec(value);
    if (quoted) value = quoted[1] !== undefined ? quoted[1].replace(/\\(.)/g, "$1") : quoted[2].replace(/''/g, "'");
    else value = value.replace(/\s+#.*$/, "");
    return value === "" ? undefined : normalize(value);
  }
  return undefined;
}

const [base, head] = process.argv.slice(2);
if (!base || !head || process.argv.length > 4) {
  console.error("usage: node .github/preview-stacks.mjs BASE HEAD");
  process.exit(64);
}

process.chdir(git("rev-parse", "--show-toplevel").trim());
const changed = new Set(paths(git("diff", "-z", "--name-only", "--no-renames", `${base}...${head}`)));
const codeChanges = [...changed].filter((path) =>
  CODE.some((code) => (code.endsWith("/") ? path.startsWith(code) : path === code)),
);

const stacks = [];
for (const configFile of paths(git("ls-files", "-z", "--", "Pulumi.*.yaml", "Pulumi.*.yml"))) {
  const stack = PULUMI_STACK.exec(configFile)?.[1];
  if (stack === undefined) continue;
  const file = stackFileOf(configFile);
  if (file === undefined) {
    console.error(`::warning file=${configFile}::${configFile} names no nodeforge:stackFile: stack ${stack} skipped`);
    continue;
  }
  const why =
    codeChanges.length > 0
      ? `${codeChanges[0]} changed`
      : changed.has(file)
        ? `${file} changed`
        : changed.has(configFile)
          ? `${configFile} changed`
          : undefined;
  if (why === undefined) continue;
  console.error(`preview ${stack} (${file}): ${why}`);
  stacks.push({ stack, file });
}
stacks.sort((a, b) => (a.stack < b.stack ? -1 : a.stack > b.stack ? 1 : 0));

const candidates = [
  ...(codeChanges.length > 0 ? paths(git("ls-files", "-z", "--", "stacks")) : [...changed]).filter((path) =>
    STACK_FILE.test(path),
  ),
  ...stacks.map(({ file }) => file),
];
const files = [...new Set(candidates)].filter((path) => existsSync(path)).sort();
for (const file of files) console.error(`validate ${file}`);
if (stacks.length === 0) console.error("no Pulumi stack's plan changes");

console.log(`stacks=${JSON.stringify(stacks)}`);
console.log(`files=${JSON.stringify(files)}`);
