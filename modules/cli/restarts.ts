/**
 * What a changed step restarts when it runs again, read from its scripts as they are written (templates/scripts):
 * restart-on-change lives in the scripts, guarded by what they name: stamps (`nf_changed NAME VALUE` ...
 * `nf_stamp NAME VALUE`, the VALUE a hash of the step's files and releases) and release checksums.
 *
 * - install-containerd restarts containerd.service when its files or the containerd or runc release changed;
 * - configure-kubelet restarts a running kubelet.service when its files changed;
 * - kubernetes-upgrade restarts the kubelet once it swaps in a new release, and on a control plane its static pods
 *   (kubeadm upgrade apply on the first, kubeadm upgrade node on the others);
 * - an etcd member restarts etcd when its files or the etcd release changed;
 * - a VM's step restarts a running VM when its domain definition (domain.xml: cpus, memory) changed.
 *
 * A script whose stamps and checksums all stay the same restarts nothing (a re-run after lost state restarts nothing
 * either).
 */
import type { PlannedStep } from "../plan";
import type { StackSpec } from "../stack";
import { vmPaths, vmStepName } from "../vm";

/** Something a step's run restarts on a machine. */
export interface Restart {
  /** `containerd.service`, or `VM worker-1`. */
  what: string;
  /** Restarted only if it runs at the time (the kubelet before its node joined, a stopped VM, stay as they are). */
  ifRunning: boolean;
}

/** A shell word as the templates write it: quoted, or bare up to a separator. */
const WORD = String.raw`("[^"]*"|'[^']*'|[^\s;|&)]+)`;
const STAMP = new RegExp(String.raw`\bnf_(?:changed|stamp)[ \t]+${WORD}[ \t]+${WORD}`, "g");
/** A sha256 checksum or hash, as the scripts name releases and files. */
const CHECKSUM = /\b[0-9a-f]{64}\b/g;
/** kubeadm commands that restart static pods (the control plane's: API server, controller manager, scheduler, etcd). */
const KUBEADM_UPGRADES: { pattern: RegExp; what: string; controlPlaneOnly: boolean }[] = [
  {
    pattern: /\bkubeadm upgrade apply\b/,
    what: "control-plane static pods (kubeadm upgrade apply)",
    controlPlaneOnly: false,
  },
  // On a worker, kubeadm upgrade node only rewrites the kubelet's configuration.
  {
    pattern: /\bkubeadm upgrade node\b/,
    what: "control-plane static pods (kubeadm upgrade node)",
    controlPlaneOnly: true,
  },
];
const RESTART = new RegExp(
  String.raw`\bsystemctl[ \t]+(?:-\S+[ \t]+)*(?:try-)?restart[ \t]+(?:-\S+[ \t]+)*${WORD}`,
  "g",
);

function unquote(word: string): string {
  return /^(["']).*\1$/s.test(word) ? word.slice(1, -1) : word;
}

/** The script's lines that are not comments. */
function code(script: string): string[] {
  return script.split("\n").filter((line) => !line.trimStart().startsWith("#"));
}

/** What guards the script's restarts: every stamp it checks or writes (`NAME VALUE`) and checksum it names, sorted. */
export function guards(script: string): string[] {
  const found = new Set<string>();
  for (const line of code(script)) {
    for (const m of line.matchAll(STAMP)) found.add(`${unquote(m[1]!)} ${unquote(m[2]!)}`);
    for (const m of line.matchAll(CHECKSUM)) found.add(m[0]);
  }
  return [...found].sort();
}

/**
 * What the script restarts, in order: the units it restarts (`systemctl restart UNIT`) and, on a control-plane
 * machine, the static pods a kubeadm upgrade replaces.
 */
export function restartedBy(script: string, controlPlane: boolean): string[] {
  const found: string[] = [];
  const lines = code(script);
  for (const upgrade of KUBEADM_UPGRADES) {
    if ((controlPlane || !upgrade.controlPlaneOnly) && lines.some((line) => upgrade.pattern.test(line))) {
      found.push(upgrade.what);
    }
  }
  for (const line of lines) {
    for (const m of line.matchAll(RESTART)) {
      const name = unquote(m[1]!);
      // systemctl's own default: a name without a unit type is a service.
      const unit = /\.[a-z]+$/.test(name) ? name : `${name}.service`;
      if (!found.includes(unit)) found.push(unit);
    }
  }
  return found;
}

/**
 * What the new script restarts on its next run after the old one ran: what it restarts, when one of its guards
 * changed. `units`: the step's (PlannedStep.units); a unit it watches only for "enabled" is restarted only if it
 * runs. `controlPlane`: whether the step's machine is a control plane.
 */
export function scriptRestarts(
  oldScript: string,
  newScript: string,
  units: PlannedStep["units"],
  controlPlane: boolean,
): Restart[] {
  const [was, is] = [guards(oldScript), guards(newScript)];
  if (was.length === is.length && was.every((stamp, i) => stamp === is[i])) return [];
  return restartedBy(newScript, controlPlane).map((unit) => ({
    what: unit,
    ifRunning: units.find((u) => u.name === unit)?.running === false,
  }));
}

/** The VM a hypervisor's step makes, when it is one of the VM steps of `spec`. */
function vmOfStep(spec: StackSpec, step: PlannedStep): { vm: string; domainXml: string } | undefined {
  const hypervisor = spec.hypervisors.find((h) => h.name === step.machine);
  const vm = hypervisor?.vms.find((name) => vmStepName(name) === step.step);
  return hypervisor && vm ? { vm, domainXml: vmPaths(hypervisor, vm).domainXml } : undefined;
}

/** A running VM restarts when its step's domain definition changed (templates/scripts/vm.sh.hbs). */
export function vmRestarts(spec: StackSpec, step: PlannedStep, changedPaths: readonly string[]): Restart[] {
  const made = vmOfStep(spec, step);
  return made && changedPaths.includes(made.domainXml) ? [{ what: `VM ${made.vm}`, ifRunning: true }] : [];
}
