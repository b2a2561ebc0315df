/**
 * One step on one machine as Pulumi resources: a RemoteFile per file (written first), then one remote.Command
 * running the step's script, re-run in place when the files change.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { RemoteFile } from "../remote";
import { scriptCommandLine, type PrivilegeSettings } from "../remote/command-line";
import { sha256 } from "../steps/hash";
import type { MachineAccess } from "./connection";

/** A file for a step; `content` may be an Output (e.g. rendered from secrets), then mark it `secret`. */
export interface StepFile {
  path: string;
  content: pulumi.Input<string>;
  mode: string;
  owner: string;
  group: string;
  secret?: boolean;
}

export interface RemoteStepArgs {
  /** `<machine>-<step>`: the command's resource name, and the prefix of its files' names. */
  name: string;
  access: MachineAccess;
  files: StepFile[];
  /** The step's script; an Output when it is rendered from resource outputs (it must carry no secret). */
  script: pulumi.Input<string>;
  deleteScript?: string;
  /** Values whose change re-runs the script (the files' hash, at least). */
  triggers: pulumi.Input<unknown>[];
  dependsOn: pulumi.Resource[];
}

/** `/etc/containerd/config.toml` -> `etc-containerd-config.toml`, for resource names. */
export function pathSlug(path: string): string {
  return path.replace(/^\/+/, "").replace(/[^A-Za-z0-9._-]+/g, "-");
}

export function privilegeOf(access: MachineAccess, sudo: boolean): PrivilegeSettings {
  return { sudo, sudoPasswordOnStdin: access.sudoStdin !== undefined };
}

/** What changes a step's files: their paths and (secret-derived) contents, hashed so no secret leaks. */
export function filesTrigger(files: StepFile[]): pulumi.Output<string> {
  return pulumi
    .all(files.map((f) => pulumi.output(f.content)))
    .apply((contents) => sha256(files.map((f, i) => `${f.path}\0${f.mode}\0${contents[i] ?? ""}`).join("\0")));
}

/** Creates the step's resources under `parent`; returns its command (done = the step is applied). */
export function remoteStep(
  parent: pulumi.Resource,
  args: RemoteStepArgs,
  privilege: PrivilegeSettings,
): command.remote.Command {
  const files = args.files.map(
    (file) =>
      new RemoteFile(
        `${args.name}-${pathSlug(file.path)}`,
        { target: args.access.target, ...file },
        { parent, dependsOn: args.dependsOn },
      ),
  );
  const script =
    typeof args.script === "string"
      ? scriptCommandLine(args.script, privilege)
      : pulumi.output(args.script).apply((text) => scriptCommandLine(text, privilege));
  return new command.remote.Command(
    args.name,
    {
      connection: args.access.connection,
      create: script,
      // With `update` set, a changed trigger re-runs the script in place. Without it the provider would
      // replace the resource: create the new one, then run the old one's delete, uninstalling the step.
      update: script,
      delete: args.deleteScript === undefined ? undefined : scriptCommandLine(args.deleteScript, privilege),
      triggers: args.triggers,
      stdin: args.access.sudoStdin,
      // PULUMI_COMMAND_STDOUT would need sshd AcceptEnv, and scripts do not read it.
      addPreviousOutputInEnv: false,
    },
    { parent, dependsOn: [...args.dependsOn, ...files] },
  );
}
