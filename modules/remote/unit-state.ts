/**
 * The unit operations of a step's resource (MachineStep, machine-step.ts): whether a systemd unit nodeforge enables
 * is still enabled (and, where nodeforge starts it, running). A step's script leaves nothing to read back, so a unit
 * disabled behind nodeforge's back would go unnoticed; these operations let `pulumi refresh` show it and the next
 * `pulumi up` enable (and start) it again. Same provider shape and serialization constraints as remote-file.ts,
 * sharing its SSH session pool.
 */
import * as pulumi from "@pulumi/pulumi";
import { shellQuote } from "../render/shell";
import { runRemote, withoutMachinePrefix } from "./session";
import { accessChanged, MACHINE_FIELDS, targetFailures, UNKNOWN } from "./target";
import type { SshTarget } from "./types";

/** What the provider receives: plain values (the engine resolves Outputs and unwraps secrets). */
export interface UnitStateInputs {
  target: SshTarget;
  /** The step that enables the unit, for messages (`cp-1: install-containerd: containerd.service: ...`). */
  step: string;
  /** Unit name, e.g. `containerd.service`. */
  unit: string;
  /** The unit must be enabled (started at boot). */
  enabled: boolean;
  /** The unit must be running now; absent when nodeforge does not decide that (kubelet waits for kubeadm). */
  active?: boolean;
}

/**
 * The state Pulumi records. After create and update `enabled`/`active` are what the machine has (equal to the
 * inputs, or the operation failed); `read` sets them to what the machine has now, so drift shows as a diff.
 */
export interface UnitStateOutputs extends UnitStateInputs {
  /** What `systemctl is-enabled` printed: enabled, disabled, masked, static, not-found, ... */
  isEnabled: string;
  /** What `systemctl is-active` printed (active, inactive, failed, ...), when `active` is managed. */
  isActive?: string;
}

/** A unit's live state as systemctl reports it. */
interface LiveUnit {
  isEnabled: string;
  isActive: string;
}

const UNIT_NAME = /^[A-Za-z0-9@._:-]+\.(service|socket|timer|path|mount|target)$/;

function unitId(inputs: UnitStateInputs): string {
  return `${inputs.target.machine}:${inputs.unit}`;
}

function where(inputs: UnitStateInputs): string {
  return `${inputs.target.machine}: ${inputs.step}: ${inputs.unit}`;
}

/** Prints `enabled=<is-enabled>` and `active=<is-active>`; an unknown unit is `not-found`. Never fails. */
function statusScript(unit: string): string {
  const q = shellQuote(unit);
  return [
    `e=$(systemctl is-enabled ${q} 2>/dev/null | head -n 1) || true`,
    `a=$(systemctl is-active ${q} 2>/dev/null | head -n 1) || true`,
    `printf 'enabled=%s\\nactive=%s\\n' "\${e:-not-found}" "\${a:-unknown}"`,
  ].join("\n");
}

/** Enables (and starts) the unit when it is not, then prints its status like statusScript. */
function convergeScript(inputs: UnitStateInputs): string {
  const q = shellQuote(inputs.unit);
  const lines = ["set -eu"];
  if (inputs.enabled)
    lines.push(`[ "$(systemctl is-enabled ${q} 2>/dev/null || true)" = enabled ] || systemctl enable ${q}`);
  else lines.push(`! systemctl is-enabled --quiet ${q} 2>/dev/null || systemctl disable ${q}`);
  if (inputs.active === true) lines.push(`systemctl is-active --quiet ${q} || systemctl start ${q}`);
  if (inputs.active === false) lines.push(`! systemctl is-active --quiet ${q} || systemctl stop ${q}`);
  lines.push(statusScript(inputs.unit));
  return lines.join("\n");
}

async function runUnit(inputs: UnitStateInputs, verb: string, script: string): Promise<LiveUnit> {
  let result;
  try {
    result = await runRemote(inputs.target, script);
  } catch (error) {
    throw new Error(
      `${where(inputs)}: ${verb}: ${withoutMachinePrefix(inputs.target.machine, (error as Error).message)}`,
    );
  }
  if (result.code !== 0) {
    throw new Error(`${where(inputs)}: ${verb}: exited ${result.code}: ${result.stderr.trim() || "(no error output)"}`);
  }
  const found = /^enabled=(\S+)\nactive=(\S+)\n?$/.exec(result.stdout);
  if (!found) throw new Error(`${where(inputs)}: ${verb}: unexpected answer ${JSON.stringify(result.stdout)}`);
  return { isEnabled: found[1]!, isActive: found[2]! };
}

/** Whether systemctl's words mean enabled / running. */
function isEnabled(word: string): boolean {
  return word === "enabled";
}
function isActive(word: string): boolean {
  return word === "active" || word === "reloading";
}

/** The outputs for live state: inputs with the machine's actual enabled/active in place of the desired ones. */
function observed(inputs: UnitStateInputs, live: LiveUnit): UnitStateOutputs {
  const outputs: UnitStateOutputs = { ...inputs, enabled: isEnabled(live.isEnabled), isEnabled: live.isEnabled };
  if (inputs.active !== undefined) {
    outputs.active = isActive(live.isActive);
    outputs.isActive = live.isActive;
  } else {
    delete outputs.active;
    delete outputs.isActive;
  }
  return outputs;
}

/** Whether the live state is what the inputs ask for. */
function matches(wanted: UnitStateInputs, have: Pick<UnitStateOutputs, "enabled" | "active">): boolean {
  return wanted.enabled === have.enabled && (wanted.active === undefined || wanted.active === have.active);
}

async function converge(inputs: UnitStateInputs, verb: string): Promise<UnitStateOutputs> {
  const outputs = observed(inputs, await runUnit(inputs, verb, convergeScript(inputs)));
  if (!matches(inputs, outputs)) {
    const want = [
      inputs.enabled ? "enabled" : "disabled",
      inputs.active === undefined ? "" : inputs.active ? "active" : "inactive",
    ];
    const have = [outputs.isEnabled, outputs.isActive ?? ""];
    throw new Error(
      `${where(inputs)}: ${verb}: should be ${want.filter(Boolean).join(" and ")}, systemctl says ${have.filter(Boolean).join(" and ")}`,
    );
  }
  return outputs;
}

function inputFailures(news: UnitStateInputs): { property: string; reason: string }[] {
  const failures = targetFailures(news.target);
  if (typeof news.unit === "string" && news.unit !== UNKNOWN && !UNIT_NAME.test(news.unit)) {
    failures.push({ property: "unit", reason: `${JSON.stringify(news.unit)} is not a systemd unit name` });
  }
  return failures;
}

/** What read returns: the live state (never "gone": a missing unit is drift, `isEnabled: not-found`). */
export interface UnitStateReadResult {
  id: string;
  props: UnitStateOutputs;
}

/** The provider's methods with their precise result types. */
export interface UnitStateProvider {
  check(olds: UnitStateInputs, news: UnitStateInputs): Promise<pulumi.dynamic.CheckResult<UnitStateInputs>>;
  diff(id: string, olds: UnitStateOutputs, news: UnitStateInputs): Promise<pulumi.dynamic.DiffResult>;
  create(inputs: UnitStateInputs): Promise<{ id: string; outs: UnitStateOutputs }>;
  read(id: string, props?: UnitStateOutputs): Promise<UnitStateReadResult>;
  update(id: string, olds: UnitStateOutputs, news: UnitStateInputs): Promise<{ outs: UnitStateOutputs }>;
  delete(id: string, props: UnitStateOutputs): Promise<void>;
}

/** The dynamic provider behind UnitState. Exported so tests can drive it directly and after serialization. */
export const unitStateProvider: UnitStateProvider = {
  async check(_olds, news) {
    const failures = inputFailures(news);
    return failures.length > 0 ? { inputs: news, failures } : { inputs: news };
  },
  async diff(_id, olds, news) {
    const replaces: string[] = [];
    if (olds.unit !== news.unit) replaces.push("unit");
    if (MACHINE_FIELDS.some((field) => olds.target?.[field] !== news.target?.[field])) replaces.push("target");
    const changes = replaces.length > 0 || !matches(news, olds) || accessChanged(olds.target, news.target);
    return { changes, replaces, deleteBeforeReplace: false };
  },
  async create(inputs) {
    return { id: unitId(inputs), outs: await converge(inputs, "enable") };
  },
  async read(id, props) {
    if (!props?.target || !props.unit) throw new Error(`${id}: UnitState can only be refreshed from recorded state`);
    // `active` is reported only for units whose running state nodeforge manages (recorded as a boolean).
    return { id, props: observed(props, await runUnit(props, "read", statusScript(props.unit))) };
  },
  async update(_id, olds, news) {
    // Nothing to do on the machine when only the way in changed and the unit is as wanted.
    if (matches(news, olds) && olds.unit === news.unit) {
      return { outs: observed(news, { isEnabled: olds.isEnabled, isActive: olds.isActive ?? "unknown" }) };
    }
    return { outs: await converge(news, "enable") };
  },
  async delete() {
    // The step's delete script disables and removes the unit; this resource only watches it.
  },
};
