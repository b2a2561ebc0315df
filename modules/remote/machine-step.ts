/**
 * MachineStep: one planned step on one machine as ONE Pulumi resource: the step's files (a map by path), its script,
 * its delete script and the systemd units its script enables. Before, a step was a RemoteFile per file, a
 * RemoteScript and a UnitState per unit (18 resources per machine; the Pulumi SDK's cost per registered resource made
 * that the whole bill of a large stack's preview). Here the same operations run inside one resource:
 *
 * - create: write every file (atomically, as RemoteFile does), run the script, enable (and start) the units;
 * - update: rewrite only the files that differ, run the script again only when it, a trigger or a wanted file
 *   changed (a file put back after drift re-runs nothing), enable a unit found disabled, remove files the step no
 *   longer has;
 * - refresh: read every file (mode, owner, content's sha256; a plain file's content) and every unit's state back, so
 *   `pulumi refresh` shows which file or unit drifted and the next `pulumi up` puts it back;
 * - after create, update and refresh: read when the certificates the step names (made by its script, not by
 *   nodeforge: kubeadm's) expire, into `certificateExpiry`, an output only;
 * - delete: the delete script, then the step's files.
 *
 * A preview's `--diff` names each changed file (`files["/etc/containerd/config.toml"].content`). A file made of
 * secrets carries only its sha256 in `files`; its content travels in `secretContents`, a Pulumi secret as a whole.
 * Same provider style and serialization constraints as the operations it is made of (remote-file.ts, unit-state.ts,
 * remote-script.ts): functions, constants and npm or built-in modules only.
 */
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { readCertificateExpiry } from "./certificate-expiry";
import { remoteFileProvider, type RemoteFileOutputs } from "./remote-file";
import { runScript, type RemoteScriptInputs } from "./remote-script";
import { accessChanged, targetFailures, UNKNOWN } from "./target";
import type { SshTarget } from "./types";
import { unitStateProvider, type UnitStateInputs, type UnitStateOutputs } from "./unit-state";
import { providerReference } from "../provider-reference";

/** A file as the step carries it. */
export interface StepFileState {
  /** Octal permission string, e.g. "0644". */
  mode: string;
  owner: string;
  group: string;
  /** sha256 (hex) of the content: as wanted in inputs, as found on the machine after a refresh. */
  sha256: string;
  /** The content, for files that are not secret; a secret file's is in `secretContents`. */
  content?: string;
}

/** What nodeforge wants of a unit the step's script enables. */
export interface StepUnitState {
  enabled: boolean;
  /** The unit must be running now; absent when nodeforge does not decide that (the kubelet waits for kubeadm). */
  active?: boolean;
  /** What `systemctl is-enabled` / `is-active` said at the last create, update or refresh (outputs only). */
  isEnabled?: string;
  isActive?: string;
}

/** The step itself: its name and scripts. */
export interface StepRun {
  /** The step's name, for messages (`cp-1: install-containerd: ...`) and the machine's journal. */
  name: string;
  /** Run with /bin/sh as root; idempotent. Carries no secret: it is kept in state and shown by `--diff`. */
  script: string;
  /** Run when the step goes away; "" when there is nothing to undo. */
  deleteScript: string;
  /** Values whose change runs the script again besides its files and text (never secrets themselves). */
  triggers: string[];
}

/**
 * What the provider receives: plain values (the engine resolves Outputs and unwraps secrets). Few top-level
 * properties on purpose: the Pulumi SDK makes an Output (with promises) per property per resource, the largest
 * part of a large stack's evaluation; `secretContents` and `units` are left out where a step has none.
 */
export interface MachineStepInputs {
  target: SshTarget;
  step: StepRun;
  /** The step's files by absolute path. */
  files: Record<string, StepFileState>;
  /** The content of each secret file (those in `files` without `content`), by path. */
  secretContents?: Record<string, string>;
  /** The units the script enables, by name. */
  units?: Record<string, StepUnitState>;
  /** Certificates (PEM files, or kubeconfigs' client certificates) the script makes or renews, by path. */
  certificates?: string[];
}

/** The state Pulumi records: the inputs as last applied (files and units as last seen) and what the files were. */
export interface MachineStepOutputs extends MachineStepInputs {
  /** Hash of the wanted files at the last create or update: a refresh never changes it, so drift re-runs nothing. */
  applied: string;
  /** When each of `certificates` expires (ISO 8601, UTC), as last read; a path not on the machine is left out. */
  certificateExpiry?: Record<string, string>;
}

function sha256Of(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** "644" and "0644" are the same mode (a mode not known yet, in a preview, is kept as it comes). */
function normalMode(mode: string): string {
  return typeof mode === "string" ? mode.padStart(4, "0") : mode;
}

/**
 * The hash of what the files should be (paths, modes, owners, contents' sha256): the script's file trigger. In a
 * preview, a file made of values not known yet (secrets a PKI update will make) is no record: the hash is then that
 * of nothing known, which differs from every recorded one.
 */
export function appliedHash(files: Record<string, StepFileState>): string {
  if (Object.values(files).some((f) => !isRecord(f) || typeof f.mode !== "string")) return "unknown";
  const lines = Object.keys(files)
    .sort()
    .map((path) => {
      const f = files[path]!;
      return `${path}\0${normalMode(f.mode)}\0${f.owner}:${f.group}\0${f.sha256}`;
    });
  return sha256Of(lines.join("\n"));
}

function sameFile(have: StepFileState | undefined, want: StepFileState): boolean {
  return (
    have !== undefined &&
    normalMode(have.mode) === normalMode(want.mode) &&
    have.owner === want.owner &&
    have.group === want.group &&
    have.sha256 === want.sha256
  );
}

function unitMatches(have: StepUnitState | undefined, want: StepUnitState): boolean {
  return (
    have !== undefined &&
    have.enabled === want.enabled &&
    (want.active === undefined || want.active === have.active) &&
    (want.active === undefined) === (have.active === undefined)
  );
}

/** One file as the RemoteFile operations take it. */
function fileOf(inputs: MachineStepInputs, path: string, file: StepFileState): RemoteFileOutputs {
  const content = file.content ?? inputs.secretContents?.[path] ?? "";
  return {
    target: inputs.target,
    path,
    content,
    mode: file.mode,
    owner: file.owner,
    group: file.group,
    sha256: file.sha256,
  };
}

function unitOf(inputs: MachineStepInputs, unit: string, state: StepUnitState): UnitStateInputs {
  return {
    target: inputs.target,
    step: inputs.step.name,
    unit,
    enabled: state.enabled,
    ...(state.active === undefined ? {} : { active: state.active }),
  };
}

function scriptOf(inputs: MachineStepInputs): RemoteScriptInputs {
  return {
    target: inputs.target,
    step: inputs.step.name,
    script: inputs.step.script,
    deleteScript: inputs.step.deleteScript,
    triggers: inputs.step.triggers,
  };
}

/** A unit's state for the outputs: what is wanted, with what systemctl said. */
function unitState(want: StepUnitState, live: UnitStateOutputs): StepUnitState {
  return {
    enabled: live.enabled,
    ...(want.active === undefined ? {} : { active: live.active ?? false }),
    isEnabled: live.isEnabled,
    ...(live.isActive === undefined ? {} : { isActive: live.isActive }),
  };
}

/** A map or object as opposed to the engine's placeholder for an unknown value (a string). */
function isRecord<T>(value: T | string | undefined): value is T {
  return typeof value === "object" && value !== null;
}

function known(value: unknown): value is string {
  return typeof value === "string" && value !== UNKNOWN;
}

/** `certificates`, when given, is a list of absolute paths (the read script tests each as a file). */
function certificatesFailures(certificates: unknown): { property: string; reason: string }[] {
  if (certificates === undefined) return [];
  if (!Array.isArray(certificates)) return [{ property: "certificates", reason: "is not a list of paths" }];
  return certificates
    .filter((path) => typeof path !== "string" || !path.startsWith("/"))
    .map((path) => ({ property: "certificates", reason: `${JSON.stringify(path)} is not an absolute path` }));
}

function inputFailures(news: MachineStepInputs): { property: string; reason: string }[] {
  const failures = targetFailures(news.target);
  const name = isRecord(news.step) ? news.step.name : undefined;
  if (known(name) && !/^[a-z0-9][a-z0-9-]*$/.test(name)) {
    failures.push({ property: "step", reason: `${JSON.stringify(name)} is not a kebab-case step name` });
  }
  failures.push(...certificatesFailures(news.certificates));
  // During a preview, a file made of values not known yet (a new PKI's) is the engine's placeholder as a whole.
  const secrets = news.secretContents ?? {};
  if (!isRecord(news.files) || !isRecord(secrets)) return failures;
  for (const [path, file] of Object.entries(news.files)) {
    if (!isRecord(file)) continue;
    const content = file.content ?? secrets[path];
    if (content === undefined) {
      failures.push({ property: "files", reason: `${path}: no content (neither in files nor in secretContents)` });
    } else if (known(content) && known(file.sha256) && sha256Of(content) !== file.sha256) {
      failures.push({ property: "files", reason: `${path}: sha256 does not match the content` });
    }
  }
  return failures;
}

async function checkParts(news: MachineStepInputs): Promise<{ property: string; reason: string }[]> {
  const failures: { property: string; reason: string }[] = [];
  for (const [path, file] of Object.entries(isRecord(news.files) ? news.files : {})) {
    if (!isRecord(file)) continue;
    const checked = await remoteFileProvider.check(fileOf(news, path, file), fileOf(news, path, file));
    for (const f of checked.failures ?? []) {
      if (f.property !== "target") failures.push({ property: "files", reason: `${path}: ${f.property}: ${f.reason}` });
    }
  }
  for (const [unit, state] of Object.entries(isRecord(news.units) ? news.units : {})) {
    const checked = await unitStateProvider.check(unitOf(news, unit, state), unitOf(news, unit, state));
    for (const f of checked.failures ?? []) {
      if (f.property !== "target") failures.push({ property: "units", reason: `${unit}: ${f.reason}` });
    }
  }
  return failures;
}

/**
 * Whether the script must run again: it, a trigger or a wanted file changed, or the machine is reached at another
 * address or port (renumbered, or really another machine under the same name: the idempotent script converges).
 */
function mustRun(olds: MachineStepOutputs, news: MachineStepInputs): boolean {
  return (
    olds.step?.script !== news.step.script ||
    JSON.stringify(olds.step?.triggers) !== JSON.stringify(news.step.triggers) ||
    olds.applied !== appliedHash(news.files) ||
    olds.target?.host !== news.target?.host ||
    olds.target?.port !== news.target?.port
  );
}

function filesDiffer(olds: MachineStepOutputs, news: MachineStepInputs): boolean {
  const paths = new Set([...Object.keys(olds.files ?? {}), ...Object.keys(news.files)]);
  return [...paths].some((path) => {
    const want = news.files[path];
    return want === undefined || !sameFile(olds.files?.[path], want) || olds.files?.[path]?.content !== want.content;
  });
}

function unitsDiffer(olds: MachineStepOutputs, news: MachineStepInputs): boolean {
  const names = new Set([...Object.keys(olds.units ?? {}), ...Object.keys(news.units ?? {})]);
  return [...names].some((unit) => {
    const want = news.units?.[unit];
    return want === undefined || !unitMatches(olds.units?.[unit], want);
  });
}

/** Writes the files of `inputs` that `have` does not show as wanted; returns every file's state. */
async function writeFiles(
  inputs: MachineStepInputs,
  have: Record<string, StepFileState>,
): Promise<Record<string, StepFileState>> {
  const out: Record<string, StepFileState> = {};
  await Promise.all(
    Object.entries(inputs.files).map(async ([path, want]) => {
      if (!sameFile(have[path], want) || have[path]?.content !== want.content) {
        await remoteFileProvider.create(fileOf(inputs, path, want));
      }
      out[path] = { ...want, mode: normalMode(want.mode) };
    }),
  );
  return out;
}

/** Enables (and starts) the units of `inputs` that `have` does not show as wanted; returns every unit's state. */
async function convergeUnits(
  inputs: MachineStepInputs,
  have: Record<string, StepUnitState>,
): Promise<Record<string, StepUnitState>> {
  const out: Record<string, StepUnitState> = {};
  for (const [unit, want] of Object.entries(inputs.units ?? {})) {
    const recorded = have[unit];
    out[unit] = unitMatches(recorded, want)
      ? { ...want, ...recorded }
      : unitState(want, (await unitStateProvider.create(unitOf(inputs, unit, want))).outs);
  }
  return out;
}

async function apply(inputs: MachineStepInputs, olds: MachineStepOutputs | undefined): Promise<MachineStepOutputs> {
  const files = await writeFiles(inputs, olds?.files ?? {});
  if (!olds) await runScript(scriptOf(inputs), "create", inputs.step.script);
  else if (mustRun(olds, inputs)) await runScript(scriptOf(inputs), "update", inputs.step.script);
  // Files the step no longer has go once the script has run (as a dropped RemoteFile did).
  for (const [path, file] of Object.entries(olds?.files ?? {})) {
    if (!(path in inputs.files)) await remoteFileProvider.delete("", fileOf(olds!, path, file));
  }
  const units = await convergeUnits(inputs, olds?.units ?? {});
  return {
    ...inputs,
    files,
    ...(inputs.units ? { units } : {}),
    applied: appliedHash(inputs.files),
    ...(await expiryAfterApply(inputs, olds)),
  };
}

/** `certificateExpiry` as the machine has it now, for a step that names certificates. */
async function expiryOf(props: MachineStepInputs): Promise<{ certificateExpiry?: Record<string, string> }> {
  const paths = props.certificates ?? [];
  if (paths.length === 0) return {};
  return { certificateExpiry: await readCertificateExpiry(props.target, props.step.name, paths) };
}

/**
 * The reading after the script ran: a reading that fails keeps the last one (or none) rather than fail a step whose
 * work is done, which would run its script again on the next up; the next refresh reads again.
 */
async function expiryAfterApply(
  inputs: MachineStepInputs,
  olds: MachineStepOutputs | undefined,
): Promise<{ certificateExpiry?: Record<string, string> }> {
  try {
    return await expiryOf(inputs);
  } catch (error) {
    pulumi.log.warn((error as Error).message);
    return olds?.certificateExpiry ? { certificateExpiry: olds.certificateExpiry } : {};
  }
}

/** Reads every file and unit back; a file gone from the machine drops out of `files` (the next up writes it). */
async function readBack(props: MachineStepOutputs): Promise<MachineStepOutputs> {
  const files: Record<string, StepFileState> = {};
  await Promise.all(
    Object.entries(props.files ?? {}).map(async ([path, file]) => {
      const live = (await remoteFileProvider.read("", fileOf(props, path, file))).props;
      if (!live.sha256) return;
      files[path] = {
        mode: live.mode ?? file.mode,
        owner: live.owner ?? file.owner,
        group: live.group ?? file.group,
        sha256: live.sha256,
        // A secret file's content found on the machine never goes into the plain `files`.
        ...(file.content === undefined ? {} : { content: live.content ?? "" }),
      };
    }),
  );
  const units: Record<string, StepUnitState> = {};
  for (const [unit, want] of Object.entries(props.units ?? {})) {
    units[unit] = unitState(
      want,
      (await unitStateProvider.read("", { ...unitOf(props, unit, want), isEnabled: "" })).props,
    );
  }
  return { ...props, files, ...(props.units ? { units } : {}), ...(await expiryOf(props)) };
}

/** The provider's methods with their precise result types. */
export interface MachineStepProvider {
  check(olds: MachineStepInputs, news: MachineStepInputs): Promise<pulumi.dynamic.CheckResult<MachineStepInputs>>;
  diff(id: string, olds: MachineStepOutputs, news: MachineStepInputs): Promise<pulumi.dynamic.DiffResult>;
  create(inputs: MachineStepInputs): Promise<{ id: string; outs: MachineStepOutputs }>;
  read(id: string, props?: MachineStepOutputs): Promise<{ id: string; props: MachineStepOutputs }>;
  update(id: string, olds: MachineStepOutputs, news: MachineStepInputs): Promise<{ outs: MachineStepOutputs }>;
  delete(id: string, props: MachineStepOutputs): Promise<void>;
}

/** The dynamic provider behind MachineStep. Exported so tests can drive it directly and after serialization. */
export const machineStepProvider: MachineStepProvider = {
  async check(_olds, news) {
    const failures = [...inputFailures(news), ...(await checkParts(news))];
    return failures.length > 0 ? { inputs: news, failures } : { inputs: news };
  },
  async diff(_id, olds, news) {
    // Only a renamed machine is a replacement: its step is undone under the old name first (the "new" machine may be
    // the old one, where create-then-delete would undo the fresh run). A new address or port is an update.
    const replaces = olds.target?.machine !== news.target?.machine ? ["target"] : [];
    const changes =
      replaces.length > 0 ||
      !isRecord(news.files) ||
      !isRecord(news.step) ||
      mustRun(olds, news) ||
      filesDiffer(olds, news) ||
      unitsDiffer(olds, news) ||
      olds.step?.deleteScript !== news.step.deleteScript ||
      olds.step?.name !== news.step.name ||
      JSON.stringify(olds.certificates ?? []) !== JSON.stringify(news.certificates ?? []) ||
      JSON.stringify(olds.secretContents) !== JSON.stringify(news.secretContents) ||
      accessChanged(olds.target, news.target);
    return { changes, replaces, deleteBeforeReplace: replaces.length > 0 };
  },
  async create(inputs) {
    return { id: `${inputs.target.machine}:${inputs.step.name}`, outs: await apply(inputs, undefined) };
  },
  async read(id, props) {
    if (!props?.target || !props.step) throw new Error(`${id}: MachineStep can only be refreshed from recorded state`);
    return { id, props: await readBack(props) };
  },
  async update(_id, olds, news) {
    return { outs: await apply(news, olds) };
  },
  async delete(_id, props) {
    if (props.step.deleteScript) await runScript(scriptOf(props), "delete", props.step.deleteScript);
    for (const [path, file] of Object.entries(props.files ?? {})) {
      await remoteFileProvider.delete("", fileOf(props, path, file));
    }
  },
};

/** A file of a step as the program gives it: content may be an Output (rendered from secrets, then `secret`). */
export interface MachineStepFile {
  path: string;
  content: pulumi.Input<string>;
  mode: string;
  owner: string;
  group: string;
  secret?: boolean;
}

/** Arguments of a MachineStep resource. */
export interface MachineStepArgs {
  target: pulumi.Input<{ [K in keyof SshTarget]: pulumi.Input<SshTarget[K]> }>;
  step: string;
  files: MachineStepFile[];
  /** Carries no secret: it is kept in state and shown by `pulumi preview --diff`. */
  script: pulumi.Input<string>;
  deleteScript?: pulumi.Input<string>;
  /** Values whose change runs the script again besides its files and text; never secrets. */
  triggers?: pulumi.Input<string>[];
  units?: Record<string, { enabled: boolean; active?: boolean }>;
  /** Certificates the script makes or renews, whose expiry the resource reads (`certificateExpiry`). */
  certificates?: string[];
}

/** The secret form of each target, made once: a machine's steps share one (and its promises). */
const secretTargets = new WeakMap<object, pulumi.Output<unknown>>();

function secretTarget(target: MachineStepArgs["target"]): pulumi.Output<unknown> {
  let secret = secretTargets.get(target as object);
  if (!secret) {
    secret = pulumi.secret(target);
    secretTargets.set(target as object, secret);
  }
  return secret;
}

/** A step's files, script, delete script and units on one machine, as one resource. */
export class MachineStep extends pulumi.dynamic.Resource {
  declare readonly target: pulumi.Output<SshTarget>;
  declare readonly step: pulumi.Output<StepRun>;
  declare readonly files: pulumi.Output<Record<string, StepFileState>>;
  /** Absent (undefined) for a step whose script enables no unit. */
  declare readonly units: pulumi.Output<Record<string, StepUnitState> | undefined>;
  /** When the step's `certificates` expire, by path; undefined for a step that names none. */
  declare readonly certificateExpiry: pulumi.Output<Record<string, string> | undefined>;

  constructor(name: string, args: MachineStepArgs, opts?: pulumi.CustomResourceOptions) {
    const files: Record<string, pulumi.Input<StepFileState>> = {};
    const secretContents: Record<string, pulumi.Input<string>> = {};
    for (const file of args.files) {
      const meta = { mode: file.mode, owner: file.owner, group: file.group };
      if (typeof file.content === "string" && !file.secret) {
        // Most files are known text: no Output to make (they are the bulk of a large stack's evaluation).
        files[file.path] = { ...meta, sha256: sha256Of(file.content), content: file.content };
        continue;
      }
      const content = pulumi.output(file.content);
      if (file.secret) {
        secretContents[file.path] = content;
        // The hash of a key or token reveals nothing of it; it lets a preview name the file that changes.
        files[file.path] = pulumi.unsecret(content.apply((text) => ({ ...meta, sha256: sha256Of(text) })));
      } else {
        files[file.path] = content.apply((text) => ({ ...meta, sha256: sha256Of(text), content: text }));
      }
    }
    // The SDK makes an Output, with promises (each with a stack trace), per property per resource: no property
    // where a step has nothing for it, no Output where a value is plain.
    const units = args.units ?? {};
    const props = {
      // The whole target is secret: it carries the private key and the sudo password.
      target: secretTarget(args.target),
      step: {
        name: args.step,
        script: args.script,
        deleteScript: args.deleteScript ?? "",
        triggers: args.triggers ?? [],
      },
      files,
      ...(Object.keys(secretContents).length > 0 ? { secretContents: pulumi.secret(secretContents) } : {}),
      ...(Object.keys(units).length > 0 ? { units } : {}),
      // certificateExpiry is an output the provider fills in: undefined here declares it on the resource.
      ...(args.certificates?.length ? { certificates: args.certificates, certificateExpiry: undefined } : {}),
    };
    const options = pulumi.mergeOptions(opts, { additionalSecretOutputs: ["target", "secretContents"] });
    super(
      providerReference(machineStepProvider, "machineStepProvider"),
      name,
      props,
      options,
      "nodeforge",
      "MachineStep",
    );
  }
}
