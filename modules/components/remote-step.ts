/**
 * One step on one machine as Pulumi resources: a RemoteFile per file (written first), then one RemoteScript
 * running the step's script, run again in place when the files change.
 */
import * as pulumi from "@pulumi/pulumi";
import { RemoteFile, RemoteScript } from "../remote";
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
  /** The machine's name: with the step, `<machine>-<step>` names the script's resource and prefixes its files'. */
  machine: string;
  /** The step's name (kebab-case), also in messages: `cp-1: install-containerd: ...`. */
  step: string;
  /** The resource name when the step is about another machine than the one it runs on (default `<machine>-<step>`). */
  name?: string;
  access: MachineAccess;
  files: StepFile[];
  /** The step's script; an Output when it is rendered from resource outputs (it must carry no secret). */
  script: pulumi.Input<string>;
  deleteScript?: string;
  /** Values whose change re-runs the script (the files' hash, at least); never secrets themselves. */
  triggers: pulumi.Input<string>[];
  dependsOn: pulumi.Resource[];
}

/** `/etc/containerd/config.toml` -> `etc-containerd-config.toml`, for resource names. */
export function pathSlug(path: string): string {
  return path.replace(/^\/+/, "").replace(/[^A-Za-z0-9._-]+/g, "-");
}

/** What changes a step's files: their paths and (secret-derived) contents, hashed so no secret leaks. */
export function filesTrigger(files: StepFile[]): pulumi.Output<string> {
  return pulumi
    .all(files.map((f) => pulumi.output(f.content)))
    .apply((contents) => sha256(files.map((f, i) => `${f.path}\0${f.mode}\0${contents[i] ?? ""}`).join("\0")));
}

/** Creates the step's resources under `parent`; returns its script (done = the step is applied). */
export function remoteStep(parent: pulumi.Resource, args: RemoteStepArgs): RemoteScript {
  const name = args.name ?? `${args.machine}-${args.step}`;
  const files = args.files.map(
    (file) =>
      new RemoteFile(
        `${name}-${pathSlug(file.path)}`,
        { target: args.access.target, ...file },
        { parent, dependsOn: args.dependsOn },
      ),
  );
  return new RemoteScript(
    name,
    {
      target: args.access.target,
      step: args.step,
      script: args.script,
      ...(args.deleteScript === undefined ? {} : { deleteScript: args.deleteScript }),
      triggers: args.triggers,
    },
    { parent, dependsOn: [...args.dependsOn, ...files] },
  );
}
