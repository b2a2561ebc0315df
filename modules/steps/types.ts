/**
 * A provisioning step: what files it owns on a machine and which idempotent script converges the machine
 * once they are in place. Steps know nothing of Pulumi or SSH; modules/components turns them into resources.
 */
import type { OsProfile } from "../os";
import type { KubernetesRelease, Pins } from "../pins";
import type { MachineSpec, StackSpec } from "../stack/types";

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
}

export function rootFile(path: string, content: string, mode = "0644"): ManagedFile {
  return { path, content, mode, owner: "root", group: "root" };
}
