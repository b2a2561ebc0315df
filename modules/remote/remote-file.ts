/**
 * The file operations of a step's resource (MachineStep, machine-step.ts) on one file: written atomically over SSH,
 * read back for drift on `pulumi refresh`, removed on destroy (what @pulumi/command's CopyToRemote lacks). Shaped as
 * a dynamic provider (check, diff, create, read, update, delete) so that each operation can be driven and tested on
 * its own; the engine ships it inside MachineStep's provider through closure serialization, so its methods use only
 * functions, constants and npm or built-in modules.
 */
import { createHash } from "node:crypto";
import { posix } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { shellQuote } from "../render/shell";
import { runRemote, withoutMachinePrefix, type RemoteResult } from "./session";
import { accessChanged, MACHINE_FIELDS, targetFailures, UNKNOWN } from "./target";
import type { SshTarget } from "./types";

/** What the provider receives: plain values (the engine resolves Outputs and unwraps secrets). */
export interface RemoteFileInputs {
  target: SshTarget;
  /** Absolute path of the file on the machine. */
  path: string;
  /** Full file content (UTF-8). */
  content: string;
  /** Octal permission string, e.g. "0644"; normalised to four digits. */
  mode: string;
  owner: string;
  group: string;
}

/** The state Pulumi records: the inputs plus the content's sha256 as found on the machine. */
export interface RemoteFileOutputs extends RemoteFileInputs {
  sha256: string;
}

const TEMP_PREFIX = ".nodeforge-tmp.";

function sha256Of(content: string): string {
  return createHash("sha256").update(content, "utf8").digest("hex");
}

/** "644" and "0644" are the same mode; state and inputs always carry four digits. */
function normalMode(mode: string): string {
  return mode.padStart(4, "0");
}

function fileId(inputs: RemoteFileInputs): string {
  return `${inputs.target.machine}:${inputs.path}`;
}

/** Validation failures for `check`, one per bad property. Unknown (preview) values are not judged. */
function inputFailures(news: RemoteFileInputs): { property: string; reason: string }[] {
  const failures: { property: string; reason: string }[] = [];
  const known = (value: unknown): value is string => typeof value === "string" && value !== UNKNOWN;
  const { path, mode, owner, group } = news;
  if (known(path) && (!path.startsWith("/") || path.endsWith("/") || posix.normalize(path) !== path)) {
    failures.push({ property: "path", reason: `${JSON.stringify(path)} must be a normalised absolute file path` });
  }
  if (known(path) && /\p{Cc}/u.test(path)) {
    failures.push({ property: "path", reason: "path contains control characters" });
  }
  if (known(mode) && !/^[0-7]{3,4}$/.test(mode)) {
    failures.push({ property: "mode", reason: `${JSON.stringify(mode)} is not an octal mode like "0644"` });
  }
  failures.push(...targetFailures(news.target));
  for (const [property, name] of [
    ["owner", owner],
    ["group", group],
  ] as const) {
    if (known(name) && !/^([a-z_][a-z0-9_.-]*\$?|[0-9]+)$/i.test(name)) {
      failures.push({ property, reason: `${JSON.stringify(name)} is not a user or group name` });
    }
  }
  return failures;
}

/** Turns a failed run into `<machine>: <verb> <path>: <what went wrong>`; never includes content or secrets. */
function failure(inputs: RemoteFileInputs, verb: string, cause: unknown, result?: RemoteResult): Error {
  const detail = result
    ? `exited ${result.code}: ${result.stderr.trim() || "(no error output)"}`
    : withoutMachinePrefix(inputs.target.machine, (cause as Error).message);
  return new Error(`${inputs.target.machine}: ${verb} ${inputs.path}: ${detail}`);
}

async function run(inputs: RemoteFileInputs, verb: string, script: string, stdin?: string): Promise<RemoteResult> {
  let result: RemoteResult;
  try {
    result = await runRemote(inputs.target, script, { stdin });
  } catch (error) {
    throw failure(inputs, verb, error);
  }
  if (result.code !== 0) throw failure(inputs, verb, undefined, result);
  return result;
}

/**
 * Streams the content into a temp file next to the target, checks it arrived whole (a dropped connection
 * gives `cat` an early EOF, not an error), sets owner and mode on the temp file, then renames it over the
 * target. The trap removes the temp file on any failure, so the target is either old or new, never partial.
 */
function writeScript(inputs: RemoteFileInputs, sha256: string): string {
  const q = shellQuote;
  return [
    "set -eu",
    `path=${q(inputs.path)}`,
    `dir=${q(posix.dirname(inputs.path))}`,
    'if [ ! -d "$dir" ]; then (umask 022 && mkdir -p -- "$dir"); fi',
    'if [ -d "$path" ] && [ ! -L "$path" ]; then echo "is a directory" >&2; exit 1; fi',
    "umask 077",
    `tmp=$(mktemp "$dir/${TEMP_PREFIX}XXXXXXXXXX")`,
    "trap 'rm -f -- \"$tmp\"' EXIT",
    "trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 141' PIPE; trap 'exit 143' TERM",
    'cat > "$tmp"',
    'sum=$(sha256sum < "$tmp"); sum=${sum%% *}',
    `if [ "$sum" != ${q(sha256)} ]; then echo "content arrived incomplete (sha256 $sum)" >&2; exit 1; fi`,
    `chown -- ${q(`${inputs.owner}:${inputs.group}`)} "$tmp"`,
    `chmod -- ${q(inputs.mode)} "$tmp"`,
    'mv -f -- "$tmp" "$path"',
  ].join("\n");
}

/** Prints `absent`, or `present <mode> <owner> <group> <sha256>` then the content when its hash is not `expected`. */
function readScript(path: string, expected: string): string {
  return [
    "set -eu",
    `path=${shellQuote(path)}`,
    'if [ ! -e "$path" ] && [ ! -L "$path" ]; then echo absent; exit 0; fi',
    'if [ ! -f "$path" ]; then echo "not a regular file" >&2; exit 1; fi',
    "meta=$(stat -L -c '%a %U %G' -- \"$path\")",
    'sum=$(sha256sum < "$path"); sum=${sum%% *}',
    'printf \'present %s %s\\n\' "$meta" "$sum"',
    `if [ "$sum" != ${shellQuote(expected)} ]; then cat -- "$path"; fi`,
  ].join("\n");
}

function deleteScript(path: string): string {
  return [
    `path=${shellQuote(path)}`,
    'if [ -d "$path" ] && [ ! -L "$path" ]; then echo "is a directory, not removing it" >&2; exit 1; fi',
    'rm -f -- "$path"',
  ].join("\n");
}

async function writeFile(inputs: RemoteFileInputs): Promise<RemoteFileOutputs> {
  const outputs = { ...inputs, mode: normalMode(inputs.mode), sha256: sha256Of(inputs.content) };
  await run(inputs, "write", writeScript(outputs, outputs.sha256), inputs.content);
  return outputs;
}

/** What read returns: the live state, or an empty id and props when the file is gone. */
export interface RemoteFileReadResult {
  id: string;
  props: Partial<RemoteFileOutputs>;
}

async function readFile(id: string, props: RemoteFileOutputs | undefined): Promise<RemoteFileReadResult> {
  if (!props?.target || !props.path) throw new Error(`${id}: RemoteFile can only be refreshed from recorded state`);
  const expected = props.sha256 || sha256Of(props.content ?? "");
  const { stdout } = await run(props, "read", readScript(props.path, expected));
  const newline = stdout.indexOf("\n");
  const header = newline < 0 ? stdout : stdout.slice(0, newline);
  if (header === "absent") return { id: "", props: {} };
  const found = /^present ([0-7]{1,4}) (\S+) (\S+) ([0-9a-f]{64})$/.exec(header);
  if (!found)
    throw new Error(`${props.target.machine}: read ${props.path}: unexpected answer ${JSON.stringify(header)}`);
  const [, mode, owner, group, sha256] = found;
  const content = sha256 === expected ? props.content : stdout.slice(newline + 1);
  return { id, props: { ...props, content, mode: normalMode(mode), owner, group, sha256 } };
}

const FILE_FIELDS = ["content", "owner", "group"] as const;

function sameFile(olds: RemoteFileInputs, news: RemoteFileInputs): boolean {
  return (
    olds.path === news.path &&
    normalMode(olds.mode) === normalMode(news.mode) &&
    FILE_FIELDS.every((field) => olds[field] === news[field])
  );
}

/**
 * Machine or path changed: replace (delete first when the path is unchanged, since the "new" machine may be
 * the old one under another name and create-then-delete would remove the fresh file). Content, mode, owner,
 * group: update in place. Access fields only: an update that rewrites nothing but records the new
 * credentials, so a later refresh or destroy does not use a rotated-out key.
 */
function diffFile(olds: RemoteFileOutputs, news: RemoteFileInputs): pulumi.dynamic.DiffResult {
  const replaces: string[] = [];
  if (olds.path !== news.path) replaces.push("path");
  if (MACHINE_FIELDS.some((field) => olds.target?.[field] !== news.target?.[field])) replaces.push("target");
  const changes = replaces.length > 0 || accessChanged(olds.target, news.target) || !sameFile(olds, news);
  return { changes, replaces, deleteBeforeReplace: replaces.length > 0 && olds.path === news.path };
}

async function updateFile(olds: RemoteFileOutputs, news: RemoteFileInputs): Promise<RemoteFileOutputs> {
  if (sameFile(olds, news)) return { ...news, mode: normalMode(news.mode), sha256: olds.sha256 };
  return writeFile(news);
}

async function deleteFile(props: RemoteFileOutputs): Promise<void> {
  await run(props, "delete", deleteScript(props.path));
}

/** The provider's methods with their precise result types (all present, unlike the optional dynamic interface). */
export interface RemoteFileProvider {
  check(olds: RemoteFileInputs, news: RemoteFileInputs): Promise<pulumi.dynamic.CheckResult<RemoteFileInputs>>;
  diff(id: string, olds: RemoteFileOutputs, news: RemoteFileInputs): Promise<pulumi.dynamic.DiffResult>;
  create(inputs: RemoteFileInputs): Promise<{ id: string; outs: RemoteFileOutputs }>;
  read(id: string, props?: RemoteFileOutputs): Promise<RemoteFileReadResult>;
  update(id: string, olds: RemoteFileOutputs, news: RemoteFileInputs): Promise<{ outs: RemoteFileOutputs }>;
  delete(id: string, props: RemoteFileOutputs): Promise<void>;
}

/** The dynamic provider behind RemoteFile. Exported so tests can drive it directly and after serialization. */
export const remoteFileProvider: RemoteFileProvider = {
  async check(_olds, news) {
    const failures = inputFailures(news);
    if (failures.length > 0) return { inputs: news, failures };
    const mode = typeof news.mode === "string" && news.mode !== UNKNOWN ? normalMode(news.mode) : news.mode;
    return { inputs: { ...news, mode } };
  },
  async diff(_id, olds, news) {
    return diffFile(olds, news);
  },
  async create(inputs) {
    return { id: fileId(inputs), outs: await writeFile(inputs) };
  },
  async read(id, props) {
    return readFile(id, props);
  },
  async update(_id, olds, news) {
    return { outs: await updateFile(olds, news) };
  },
  async delete(_id, props) {
    await deleteFile(props);
  },
};
