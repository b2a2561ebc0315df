/**
 * A provisioning step: what files it owns on a machine and which idempotent script converges the machine
 * once they are in place. Steps know nothing of Pulumi or SSH; modules/components turns them into resources.
 */
import type { OsProfile } from "../os";
import type { KubernetesRelease, Pins } from "../pins";
import type { MachineSpec, StackSpec } from "../stack";

export interface ManagedFile {
  path: string;
  content: string;
  /** Octal permission bits, e.g. "0644". */
  mode: string;
  owner: string;
  group: string;
}

export interface StepContext {
  stack: StackSpec;
  machine: MachineSpec;
  os: OsProfile;
  pins: Pins;
  release: KubernetesRelease;
}

/** A systemd unit a step's script enables (and possibly starts); nodeforge watches it for drift (UnitState). */
export interface StepUnit {
  /** e.g. `containerd.service`. */
  name: string;
  /**
   * true: the script also starts it, so a stopped unit is drift too. false: only "enabled" is checked (the unit
   * may rightly be stopped, e.g. the kubelet before kubeadm ran).
   */
  running: boolean;
}

export interface Step {
  /** kebab-case id: resource-name suffix and skip-list id. */
  name: string;
  title: string;
  appliesTo(ctx: StepContext): boolean;
  /**
   * True when this step must wait until every control-plane machine has finished all its steps.
   * Everything before such a step runs on all machines in parallel.
   */
  waitsForControlPlane: boolean;
  files(ctx: StepContext): ManagedFile[];
  /** Idempotent: running it twice leaves the machine as running it once does. */
  script(ctx: StepContext): string;
  /** Run by `pulumi destroy`; removes what the script installed. */
  deleteScript?(ctx: StepContext): string;
  /**
   * Units the script enables. Each gets a UnitState resource after the step's command, so `pulumi refresh`
   * reports one disabled (or stopped) behind nodeforge's back and the next `pulumi up` enables it again.
   */
  units?: readonly StepUnit[];
}

export function rootFile(path: string, content: string, mode = "0644"): ManagedFile {
  return { path, content, mode, owner: "root", group: "root" };
}

/**
 * Renders a step's files once per context: the step's files, its script (the files' hash) and its delete
 * script (the paths to remove) all need them, for every machine.
 */
export function renderedOnce(render: (ctx: StepContext) => ManagedFile[]): (ctx: StepContext) => ManagedFile[] {
  const cache = new WeakMap<StepContext, ManagedFile[]>();
  return (ctx) => {
    let files = cache.get(ctx);
    if (!files) {
      files = render(ctx);
      cache.set(ctx, files);
    }
    return files;
  };
}
