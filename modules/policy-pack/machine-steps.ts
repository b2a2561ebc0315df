/**
 * How the policies find nodeforge's machine steps among a stack's resources and read their inputs. A step is one
 * MachineStep resource (modules/remote/machine-step.ts): a dynamic resource whose type token names nodeforge's module
 * and class, with inputs `target` (the SSH target, a Pulumi secret: policies receive secrets unwrapped), `step`
 * (name, script, delete script, triggers), `files` (by path: mode, owner, group, sha256 and, unless secret, content)
 * and `secretContents` (the secret files' contents, a Pulumi secret). The engine hides `__provider` from policies.
 */

/** `pulumi-nodejs:dynamic/<module>:<type>`, as `pulumi.dynamic.Resource` names MachineStep's resources. */
export const MACHINE_STEP_TYPE = "pulumi-nodejs:dynamic/nodeforge:MachineStep";

/**
 * `read()`, or undefined when it touched a value the engine does not know yet: a preview of inputs made of other
 * resources' outputs (the PKI's keys, a VM's host key). @pulumi/policy's proxy throws its UnknownValueError there
 * (a class it does not export); the same policies run again on `pulumi up`, with every input known.
 */
export function known<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch (error) {
    if ((error as object | undefined)?.constructor?.name === "UnknownValueError") return undefined;
    throw error;
  }
}

/** A file as a step carries it. */
export interface StepFile {
  mode?: string;
  /** Absent for a secret file, whose content is in `secretContents`. */
  content?: string;
}

/** What the policies read of one MachineStep. */
export interface MachineStepView {
  machine: string;
  /** The step's name: `install-kubelet`, `kubeadm-init`... */
  step: string;
  /** The files' paths (known even when a file's values are not). */
  paths: string[];
  /** The file at `path`, or undefined while it is not known. */
  file(path: string): StepFile | undefined;
  /** The content of the file at `path` (from `files`, or from `secretContents` for a secret one), if known. */
  content(path: string): string | undefined;
  /** The step's script, if known. */
  script: string | undefined;
  /** The SSH target (machine, host, hostKey, bastion...), or undefined while it is not known. */
  target: { machine?: unknown; hostKey?: unknown; bastion?: { hostKey?: unknown } } | undefined;
}

type Props = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- engine data

/** The MachineStep behind a resource's type and inputs, or undefined for any other resource. */
export function machineStep(type: string, name: string, props: Props): MachineStepView | undefined {
  if (type !== MACHINE_STEP_TYPE) return undefined;
  const step = known(() => String(props.step.name)) ?? "";
  // Resources are named `<machine>-<step>` (modules/components/steps.ts); the target names the machine too.
  const fromName = step && name.endsWith(`-${step}`) ? name.slice(0, -step.length - 1) : name;
  const files = known(() => props.files as Props | undefined) ?? {};
  const file = (path: string) => known(() => ({ mode: files[path].mode, content: files[path].content }) as StepFile);
  return {
    machine: known(() => String(props.target.machine)) ?? fromName,
    step,
    paths: Object.keys(files),
    file,
    content: (path) => file(path)?.content ?? known(() => props.secretContents?.[path] as string | undefined),
    script: known(() => props.step.script as string | undefined),
    target: known(() => ({ ...props.target, bastion: props.target.bastion && { ...props.target.bastion } })),
  };
}

/** The machine steps among a stack's resources. */
export function machineSteps(resources: { type: string; name: string; props: Props }[]): MachineStepView[] {
  return resources
    .map((r) => machineStep(r.type, r.name, r.props))
    .filter((s): s is MachineStepView => s !== undefined);
}
