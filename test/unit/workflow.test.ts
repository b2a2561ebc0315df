/**
 * The pull request workflow (.github/workflows/preview.yml): actionlint, with shellcheck on every `run:` script, finds
 * nothing in any workflow; and the stack selection its first job runs (.github/preview-stacks.mjs) picks the Pulumi
 * stacks a change touches, tried on throwaway git repositories.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { parse } from "yaml";
import { projectRoot } from "../../modules/project-root";
import { CACHE_ROOT } from "../harness/rootfs";

const root = projectRoot();
const workflows = join(root, ".github", "workflows");
const selectScript = join(root, ".github", "preview-stacks.mjs");
const work = mkdtempSync(join(tmpdir(), "nodeforge-workflow-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** The actionlint .ci/install-actionlint builds (the version .ci/actionlint/go.mod pins); fails naming the script. */
function actionlint(): string {
  const goMod = readFileSync(join(root, ".ci", "actionlint", "go.mod"), "utf8");
  const version = /^\s*github\.com\/rhysd\/actionlint (v\S+)/m.exec(goMod)?.[1];
  assert.ok(version, ".ci/actionlint/go.mod pins no github.com/rhysd/actionlint");
  const binary = join(CACHE_ROOT, "actionlint", version, "actionlint");
  assert.ok(existsSync(binary), `no actionlint ${version} at ${binary}: run \`bash .ci/install-actionlint\` first`);
  const shellcheck = spawnSync("shellcheck", ["--version"], { encoding: "utf8" });
  assert.equal(
    shellcheck.error,
    undefined,
    `actionlint checks run: scripts with shellcheck, which must be installed (bash .ci/install-packages): ${String(shellcheck.error)}`,
  );
  return binary;
}

/** actionlint's findings on the files (run in `cwd`, a project with .github/workflows): exit status and output. */
function lint(cwd: string, files: string[]): { status: number | null; output: string } {
  // -pyflakes "": no workflow runs Python; its check must not depend on whether this machine has pyflakes.
  const run = spawnSync(actionlint(), ["-no-color", "-pyflakes", "", ...files], { cwd, encoding: "utf8" });
  assert.equal(run.error, undefined, String(run.error));
  return { status: run.status, output: run.stdout + run.stderr };
}

describe("actionlint", () => {
  it("finds nothing in .github/workflows/*.yml", () => {
    const files = readdirSync(workflows)
      .filter((file) => /\.ya?ml$/.test(file))
      .map((file) => join(".github", "workflows", file));
    assert.ok(files.includes(join(".github", "workflows", "preview.yml")), `workflows: ${files.join(", ")}`);
    const { status, output } = lint(root, files);
    assert.equal(output, "", `actionlint reported:\n${output}`);
    assert.equal(status, 0);
  });

  it("runs shellcheck on run: scripts", () => {
    const project = join(work, "lint");
    mkdirSync(join(project, ".github", "workflows"), { recursive: true });
    const bad = join(".github", "workflows", "bad.yml");
    writeFileSync(
      join(project, bad),
      ["on: push", "jobs:", "  a:", "    runs-on: ubuntu-latest", "    steps:", "      - run: echo $FOO", ""].join(
        "\n",
      ),
    );
    const { status, output } = lint(project, [bad]);
    assert.equal(status, 1, output);
    assert.match(output, /SC2086/);
  });
});

/** What .github/preview-stacks.mjs printed for $GITHUB_OUTPUT. */
interface Selection {
  stacks: { stack: string; file: string }[];
  files: string[];
}

function git(cwd: string, ...args: string[]): string {
  const run = spawnSync("git", args, {
    cwd,
    encoding: "utf8",
    env: {
      ...process.env,
      GIT_CONFIG_GLOBAL: "/dev/null",
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_AUTHOR_NAME: "test",
      GIT_AUTHOR_EMAIL: "test@example.invalid",
      GIT_COMMITTER_NAME: "test",
      GIT_COMMITTER_EMAIL: "test@example.invalid",
    },
  });
  assert.equal(run.status, 0, `git ${args.join(" ")}: ${run.stderr}`);
  return run.stdout.trim();
}

/** Writes (content) or deletes (null) files of the repository, then commits them all; returns the commit. */
function commit(repo: string, files: Record<string, string | null>): string {
  for (const [path, content] of Object.entries(files)) {
    if (content === null) {
      rmSync(join(repo, path));
    } else {
      mkdirSync(dirname(join(repo, path)), { recursive: true });
      writeFileSync(join(repo, path), content);
    }
  }
  git(repo, "add", "-A");
  git(repo, "commit", "-q", "--allow-empty", "-m", "change");
  return git(repo, "rev-parse", "HEAD");
}

const stackConfig = (file: string) => `config:\n  nodeforge:stackFile: ${file}\n`;

/** A project like this one: three stack files, Pulumi stacks sa (stacks/a.yaml), sb and sb2 (both stacks/b.yaml). */
const BASE_FILES: Record<string, string> = {
  "Pulumi.yaml": "name: nodeforge\nruntime: nodejs\nmain: build/index.js\n",
  "Pulumi.sa.yaml": stackConfig("stacks/a.yaml"),
  // Quoted, ./-prefixed, commented, beside other config: as hand-written files say it.
  "Pulumi.sb.yaml":
    'encryptionsalt: v1:abc\nconfig:\n  nodeforge:sshPrivateKey:\n    secure: v1:xyz\n  nodeforge:stackFile: "./stacks/b.yaml" # prod\n',
  "Pulumi.sb2.yaml": "config:\n  'nodeforge:stackFile': 'stacks/b.yaml'\n",
  "stacks/a.yaml": "cluster: {}\n",
  "stacks/b.yaml": "cluster: {}\n",
  "stacks/unused.yaml": "cluster: {}\n",
  "modules/stack/index.ts": "export {};\n",
  "README.md": "# project\n",
};

let repos = 0;
/** A new repository with BASE_FILES committed on `main`, HEAD on a pull request's branch from it. */
function repository(): { repo: string; base: string } {
  const repo = join(work, `repo-${++repos}`);
  mkdirSync(repo);
  git(repo, "init", "-q", "-b", "main");
  const base = commit(repo, BASE_FILES);
  git(repo, "checkout", "-q", "-b", "pr");
  return { repo, base };
}

function select(repo: string, base: string, head: string): Selection {
  const run = spawnSync(process.execPath, [selectScript, base, head], { cwd: repo, encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split("\n");
  assert.deepEqual(
    lines.map((line) => line.split("=")[0]),
    ["stacks", "files"],
  );
  const value = (line: string) => JSON.parse(line.slice(line.indexOf("=") + 1)) as unknown;
  return { stacks: value(lines[0]) as Selection["stacks"], files: value(lines[1]) as string[] };
}

/** The selection for a pull request that makes the changes on BASE_FILES. */
function selectionFor(files: Record<string, string | null>): Selection {
  const { repo, base } = repository();
  return select(repo, base, commit(repo, files));
}

const sa = { stack: "sa", file: "stacks/a.yaml" };
const sb = { stack: "sb", file: "stacks/b.yaml" };
const sb2 = { stack: "sb2", file: "stacks/b.yaml" };

describe("the stacks a pull request previews (.github/preview-stacks.mjs)", () => {
  it("a changed stack file: the stacks that use it, and the file validated", () => {
    assert.deepEqual(selectionFor({ "stacks/a.yaml": "cluster: { name: a }\n" }), {
      stacks: [sa],
      files: ["stacks/a.yaml"],
    });
    assert.deepEqual(selectionFor({ "stacks/b.yaml": "cluster: { name: b }\n" }), {
      stacks: [sb, sb2],
      files: ["stacks/b.yaml"],
    });
  });

  it("changed code: every stack, and every stack file validated", () => {
    const all = { stacks: [sa, sb, sb2], files: ["stacks/a.yaml", "stacks/b.yaml", "stacks/unused.yaml"] };
    for (const path of [
      "modules/stack/index.ts",
      "modules/new/file.ts",
      "templates/kubelet/config.yaml.hbs",
      "schemas/stack.schema.json",
      "index.ts",
      "package-lock.json",
    ]) {
      assert.deepEqual(selectionFor({ [path]: "changed\n" }), all, path);
    }
  });

  it("a stack file no Pulumi stack uses: validated only", () => {
    assert.deepEqual(selectionFor({ "stacks/unused.yaml": "cluster: { name: u }\n", "stacks/new/c.yml": "{}\n" }), {
      stacks: [],
      files: ["stacks/new/c.yml", "stacks/unused.yaml"],
    });
  });

  it("a changed Pulumi.<stack>.yaml: that stack; a new one naming a stack file: the new stack", () => {
    assert.deepEqual(selectionFor({ "Pulumi.sa.yaml": stackConfig("stacks/a.yaml") + "  other:key: 1\n" }), {
      stacks: [sa],
      files: ["stacks/a.yaml"],
    });
    assert.deepEqual(selectionFor({ "Pulumi.sc.yaml": stackConfig("stacks/unused.yaml") }), {
      stacks: [{ stack: "sc", file: "stacks/unused.yaml" }],
      files: ["stacks/unused.yaml"],
    });
  });

  it("a deleted stack file still used by a stack: the stack (whose preview then fails), nothing to validate", () => {
    assert.deepEqual(selectionFor({ "stacks/a.yaml": null }), { stacks: [sa], files: [] });
    assert.deepEqual(selectionFor({ "stacks/a.yaml": null, "Pulumi.sa.yaml": null }), { stacks: [], files: [] });
  });

  it("nothing else", () => {
    assert.deepEqual(selectionFor({ "README.md": "# changed\n", "stacks/README.md": "notes\n" }), {
      stacks: [],
      files: [],
    });
  });

  it("only what the pull request changed, not what its base changed since", () => {
    const { repo, base } = repository();
    const head = commit(repo, { "stacks/a.yaml": "cluster: { name: a }\n" });
    git(repo, "checkout", "-q", "main");
    const movedBase = commit(repo, { "stacks/b.yaml": "cluster: { name: b }\n", "modules/x.ts": "export {};\n" });
    assert.notEqual(movedBase, base);
    assert.deepEqual(select(repo, movedBase, head), { stacks: [sa], files: ["stacks/a.yaml"] });
  });

  it("every path the workflow runs on selects something", () => {
    const workflow = parse(readFileSync(join(workflows, "preview.yml"), "utf8")) as {
      on: { pull_request: { paths: string[] } };
    };
    const paths = workflow.on.pull_request.paths;
    assert.ok(paths.includes("stacks/**") && paths.includes("modules/**"), paths.join(", "));
    for (const pattern of paths) {
      // A file the pattern matches; its content names a stack file in case it is a Pulumi.<stack>.yaml.
      const path = pattern.replace("**", "deep/new.yaml").replace("*", "new");
      const selection = selectionFor({ [path]: stackConfig("stacks/a.yaml") });
      assert.ok(selection.stacks.length > 0 || selection.files.length > 0, `${pattern} (${path}) selects nothing`);
    }
  });

  it("refuses to run without a base and a head", () => {
    const run = spawnSync(process.execPath, [selectScript], { cwd: root, encoding: "utf8" });
    assert.equal(run.status, 64);
    assert.match(run.stderr, /usage: node \.github\/preview-stacks\.mjs BASE HEAD/);
  });
});
