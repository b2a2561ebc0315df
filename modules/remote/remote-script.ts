/**
 * The script operations of a step's resource (MachineStep, machine-step.ts): a step's script run on a machine over
 * the pooled SSH session.
 *
 * Why not @pulumi/command's remote.Command: its SDK adds `replaceOnChanges: ["triggers[*]"]` to every Command, so
 * on a real `pulumi up` a changed trigger REPLACES it: the new one is created, then the OLD one's delete runs (a
 * containerd config change would end in uninstall-containerd). Here a change of script or triggers is an update
 * that runs the script again in place; the delete script runs only when the step itself goes away (destroy, or
 * the machine or step dropped from the stack file). It also reaches the machine the way RemoteFile does (host
 * key pinned, one pooled connection per machine, bastions, sudo with the password on stdin), so privilege is
 * decided in one place (session.ts). Same provider shape and serialization constraints as remote-file.ts.
 */
import * as pulumi from "@pulumi/pulumi";
import { shellQuote } from "../render/shell";
import { runRemote, withoutMachinePrefix } from "./session";
import { accessChanged, targetFailures, UNKNOWN } from "./target";
import type { SshTarget } from "./types";

/** What the provider receives: plain values (the engine resolves Outputs and unwraps secrets). */
export interface RemoteScriptInputs {
  target: SshTarget;
  /** The step's name, for messages (`cp-1: install-containerd: ...`) and the resource id. */
  step: string;
  /** The script, run with /bin/sh as root; idempotent, it runs again whenever it or a trigger changes. */
  script: string;
  /** Run when the step goes away; "" when there is nothing to undo. */
  deleteScript: string;
  /** Values whose change runs the script again (hashes of the step's files, never secrets themselves). */
  triggers: string[];
}

/** The state Pulumi records: the inputs, as last applied. */
export type RemoteScriptOutputs = RemoteScriptInputs;

/** How many trailing lines of a failed script's error output a message keeps. */
const ERROR_LINES = 20;

function where(inputs: RemoteScriptInputs): string {
  return `${inputs.target.machine}: ${inputs.step}`;
}

/**
 * The message for a script that exited non-zero. Step scripts report their own failure as
 * `<machine>: <step>: <what>` (templates/partials/prelude.sh.hbs); such a line starts the message, and the lines the
 * failed program wrote before it follow, indented.
 */
function exitMessage(inputs: RemoteScriptInputs, verb: string, code: number, output: string): string {
  const lines = output.trim().split("\n").slice(-ERROR_LINES);
  const own = lines.findIndex((line) => line.startsWith(`${where(inputs)}: `));
  if (own >= 0) {
    // The script's own words first; what the failed program said before them (kubeadm's [ERROR ...] lines) after.
    const said = lines.slice(0, own).filter((line) => line.trim() !== "");
    return [...lines.slice(own), ...said.map((line) => `  ${line}`)].join("\n");
  }
  return `${where(inputs)}: ${verb} script exited ${code}: ${lines.join("\n").trim() || "(no error output)"}`;
}

/**
 * The script with a first line that notes the run in the machine's journal (`journalctl -t nodeforge`:
 * `install-containerd update`), so an operator, and a test, can see which scripts ran, delete scripts included.
 */
function logged(inputs: RemoteScriptInputs, verb: string, script: string): string {
  const line = shellQuote(`${inputs.step} ${verb}`);
  return `logger -t nodeforge -- ${line} 2>/dev/null || true\n${script}`;
}

/** Runs `script` as the step (`verb`: create, update or delete, noted in the journal); throws its failure message. */
export async function runScript(inputs: RemoteScriptInputs, verb: string, script: string): Promise<void> {
  let result;
  try {
    result = await runRemote(inputs.target, logged(inputs, verb, script));
  } catch (error) {
    throw new Error(`${where(inputs)}: ${withoutMachinePrefix(inputs.target.machine, (error as Error).message)}`);
  }
  // A script that explains its failure only on standard output still says something.
  const output = result.stderr.trim() || result.stdout;
  if (result.code !== 0) throw new Error(exitMessage(inputs, verb, result.code, output));
}

function inputFailures(news: RemoteScriptInputs): { property: string; reason: string }[] {
  const failures = targetFailures(news.target);
  if (typeof news.step === "string" && news.step !== UNKNOWN && !/^[a-z0-9][a-z0-9-]*$/.test(news.step)) {
    failures.push({ property: "step", reason: `${JSON.stringify(news.step)} is not a kebab-case step name` });
  }
  return failures;
}

/**
 * Whether the script must run again: it or a trigger changed, or the machine is now reached at another address or
 * port (renumbered, or really another machine under the same name: the idempotent script converges either way,
 * where undoing the step at the old address could fail or undo a machine that stays).
 */
function mustRun(olds: RemoteScriptInputs, news: RemoteScriptInputs): boolean {
  return (
    olds.script !== news.script ||
    JSON.stringify(olds.triggers) !== JSON.stringify(news.triggers) ||
    olds.target?.host !== news.target?.host ||
    olds.target?.port !== news.target?.port
  );
}

/** The provider's methods with their precise result types. */
export interface RemoteScriptProvider {
  check(olds: RemoteScriptInputs, news: RemoteScriptInputs): Promise<pulumi.dynamic.CheckResult<RemoteScriptInputs>>;
  diff(id: string, olds: RemoteScriptOutputs, news: RemoteScriptInputs): Promise<pulumi.dynamic.DiffResult>;
  create(inputs: RemoteScriptInputs): Promise<{ id: string; outs: RemoteScriptOutputs }>;
  read(id: string, props?: RemoteScriptOutputs): Promise<{ id: string; props: RemoteScriptOutputs }>;
  update(id: string, olds: RemoteScriptOutputs, news: RemoteScriptInputs): Promise<{ outs: RemoteScriptOutputs }>;
  delete(id: string, props: RemoteScriptOutputs): Promise<void>;
}

/** The dynamic provider behind RemoteScript. Exported so tests can drive it directly. */
export const remoteScriptProvider: RemoteScriptProvider = {
  async check(_olds, news) {
    const failures = inputFailures(news);
    return failures.length > 0 ? { inputs: news, failures } : { inputs: news };
  },
  async diff(_id, olds, news) {
    // Only a renamed machine is a replacement: its step is undone under the old name first (the "new" machine may
    // be the old one, where create-then-delete would undo the fresh run). A new address or port is an update.
    const replaces = olds.target?.machine !== news.target?.machine ? ["target"] : [];
    const changes =
      replaces.length > 0 ||
      mustRun(olds, news) ||
      olds.deleteScript !== news.deleteScript ||
      olds.step !== news.step ||
      accessChanged(olds.target, news.target);
    return { changes, replaces, deleteBeforeReplace: replaces.length > 0 };
  },
  async create(inputs) {
    await runScript(inputs, "create", inputs.script);
    return { id: `${inputs.target.machine}:${inputs.step}`, outs: inputs };
  },
  async read(id, props) {
    if (!props?.target || !props.step) throw new Error(`${id}: RemoteScript can only be refreshed from recorded state`);
    // A script leaves no single thing to read back; its files (RemoteFile) and units (UnitState) carry drift.
    return { id, props };
  },
  async update(_id, olds, news) {
    // Only the credentials or the delete script changed: record them, touch nothing on the machine.
    if (mustRun(olds, news)) await runScript(news, "update", news.script);
    return { outs: news };
  },
  async delete(_id, props) {
    if (props.deleteScript) await runScript(props, "delete", props.deleteScript);
  },
};
