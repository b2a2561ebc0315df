/**
 * Test code: the real Pulumi engine running this very project (Pulumi.yaml, index.ts through ts-node) through the
 * Automation API, with the CLI and plugins .ci/install-pulumi built, a local file backend and the passphrase
 * secrets provider in a temporary directory, and nothing ever downloaded. Each EngineStack is one Pulumi stack
 * whose stack file the test writes; its operations report what the engine did, resource by resource.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalWorkspace, PulumiCommand, type EngineEvent, type OpType, type Stack } from "@pulumi/pulumi/automation";
import { projectRoot } from "../../modules/project-root";
import { CACHE_ROOT } from "./rootfs";

/** The toolchain root .ci/install-pulumi fills for the pinned @pulumi/pulumi (its `bin/` holds CLI and plugins). */
export function pulumiRoot(): string {
  const version = (require("@pulumi/pulumi/package.json") as { version: string }).version;
  const root = join(CACHE_ROOT, "pulumi", `v${version}`);
  if (!existsSync(join(root, "bin", "pulumi"))) {
    throw new Error(`no Pulumi CLI in ${root}: run \`bash .ci/install-pulumi\` first`);
  }
  return root;
}

/** The environment every engine run gets: no update check, no plugin download, the toolchain first on PATH. */
export function engineEnv(backendDir: string): Record<string, string> {
  return {
    PULUMI_BACKEND_URL: `file://${backendDir}`,
    PULUMI_CONFIG_PASSPHRASE: "nodeforge-test",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PATH: `${join(pulumiRoot(), "bin")}:${process.env.PATH ?? ""}`,
  };
}

/** One resource's operation, by its resource name (`cp-1-install-containerd`). */
export interface ResourceOperation {
  name: string;
  type: string;
  op: OpType;
}

/** What one `pulumi` operation did. */
export interface EngineReport {
  /** Every resource the engine stepped over, with its operation ("same" included), in event order. */
  operations: ResourceOperation[];
  /** Error diagnostics by resource name ("" for the stack itself). */
  errors: { name: string; message: string }[];
  /** The operation's text output (what the CLI printed). */
  output: string;
  seconds: number;
}

/** An operation that failed; `report` says how far it got. */
export class EngineError extends Error {
  constructor(
    message: string,
    readonly report: EngineReport,
  ) {
    super(message);
  }
}

function nameOf(urn: string): string {
  return urn.slice(urn.lastIndexOf("::") + 2);
}

/** `name:op` for every resource whose operation is not "same", sorted. */
export function changed(report: EngineReport): string[] {
  return report.operations
    .filter((o) => o.op !== "same" && o.type !== "pulumi:pulumi:Stack")
    .map((o) => `${o.name}:${o.op}`)
    .sort();
}

/** Runs one operation, recording what the engine did from its events (and its text output). */
async function recorded(
  run: (hooks: { onEvent: (event: EngineEvent) => void; onOutput: (text: string) => void }) => Promise<unknown>,
): Promise<EngineReport> {
  const report: EngineReport = { operations: [], errors: [], output: "", seconds: 0 };
  const refreshing = new Set<string>();
  const onEvent = (event: EngineEvent): void => {
    const step = event.resourcePreEvent?.metadata;
    // A refresh steps over every resource; whether one drifted is the op of its outputs event (same, update...).
    if (step?.op === "refresh") refreshing.add(step.urn);
    else if (step) report.operations.push({ name: nameOf(step.urn), type: step.type, op: step.op });
    const done = event.resOutputsEvent?.metadata;
    if (done && refreshing.delete(done.urn)) {
      report.operations.push({ name: nameOf(done.urn), type: done.type, op: done.op });
    }
    const diagnostic = event.diagnosticEvent;
    if (diagnostic?.severity === "error") {
      report.errors.push({ name: diagnostic.urn ? nameOf(diagnostic.urn) : "", message: diagnostic.message.trim() });
    }
  };
  const started = Date.now();
  try {
    await run({ onEvent, onOutput: (text) => (report.output += text) });
  } catch (error) {
    throw new EngineError((error as Error).message, report);
  } finally {
    report.seconds = (Date.now() - started) / 1000;
  }
  return report;
}

let stacks = 0;

export interface EngineStack {
  /** The Pulumi stack's name (also the `Pulumi.<name>.yaml` settings file in the project, removed by remove()). */
  name: string;
  stack: Stack;
  /** The stack file this Pulumi stack provisions (`nodeforge:stackFile`). */
  stackFile: string;
  /** Replaces the stack file's text. */
  writeStackFile(yaml: string): void;
  up(options?: { expectNoChanges?: boolean }): Promise<EngineReport>;
  preview(options?: { expectNoChanges?: boolean; diff?: boolean }): Promise<EngineReport>;
  refresh(options?: { expectNoChanges?: boolean }): Promise<EngineReport>;
  destroy(): Promise<EngineReport>;
  /** Removes the stack, its settings file, its backend and stack file (the machines are left as they are). */
  remove(): Promise<void>;
}

/**
 * A new Pulumi stack of this project (or of the Pulumi project in `workDir`: a test program of its own), on its own
 * local backend, provisioning `yaml` with `sshPrivateKey` as the secret config the stack file names
 * (`nodeforge:sshPrivateKey`). Secrets beyond it: `secrets`.
 */
export async function engineStack(
  yaml: string,
  sshPrivateKey: string,
  secrets: Record<string, string> = {},
  workDir: string = projectRoot(),
): Promise<EngineStack> {
  const dir = mkdtempSync(join(tmpdir(), "nodeforge-engine-"));
  const backend = join(dir, "state");
  const stackFile = join(dir, "stack.yaml");
  writeFileSync(stackFile, yaml);
  mkdirSync(backend);
  const name = `nodeforge-test-${process.pid}-${++stacks}`;
  const pulumiCommand = await PulumiCommand.get({ root: pulumiRoot() });
  const stack = await LocalWorkspace.createStack(
    { stackName: name, workDir },
    { workDir, pulumiHome: join(dir, "home"), envVars: engineEnv(backend), pulumiCommand },
  );
  await stack.setConfig("nodeforge:stackFile", { value: stackFile });
  await stack.setConfig("nodeforge:sshPrivateKey", { value: sshPrivateKey, secret: true });
  for (const [key, value] of Object.entries(secrets)) {
    await stack.setConfig(`nodeforge:${key}`, { value, secret: true });
  }
  return {
    name,
    stack,
    stackFile,
    writeStackFile: (text) => writeFileSync(stackFile, text),
    up: (options = {}) => recorded((hooks) => stack.up({ ...options, ...hooks, color: "never" })),
    preview: (options = {}) => recorded((hooks) => stack.preview({ ...options, ...hooks, color: "never" })),
    refresh: (options = {}) => recorded((hooks) => stack.refresh({ ...options, ...hooks, color: "never" })),
    destroy: () => recorded((hooks) => stack.destroy({ ...hooks, color: "never" })),
    async remove() {
      try {
        await stack.workspace.removeStack(name, { force: true });
      } finally {
        rmSync(join(workDir, `Pulumi.${name}.yaml`), { force: true });
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
