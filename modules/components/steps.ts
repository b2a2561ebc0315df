/**
 * The one executor: a planned step (modules/plan) becomes one MachineStep resource on the machine it runs on, its
 * files as a map, its units inside, waiting with dependsOn for the steps its plan names in `after`. Files and
 * scripts made of the cluster's secrets are filled in from the PKI resources' Outputs and stay Pulumi secrets.
 * When machines' addresses come from other resources, the plan is made twice: once with stand-ins, for the
 * resources and their order (which addresses never change), and once the addresses are known, for the contents.
 */
import * as pulumi from "@pulumi/pulumi";
import {
  fileContent,
  isSecretFile,
  scriptText,
  type ClusterSecrets,
  type PlannedFile,
  type PlannedStep,
} from "../plan";
import { MachineStep } from "../remote";
import type { MachineAccess } from "./connection";

/** Where a machine's steps go: the component they are children of, and how the machine is reached. */
export interface StepHost {
  resource: pulumi.Resource;
  access: MachineAccess;
}

/** A planned step by its id. */
export type PlanLookup = (id: string) => PlannedStep | undefined;

/** The resources of the steps created so far, by planned id. */
export type StepResources = Map<string, pulumi.Resource>;

/** Where a step's contents come from. */
export interface StepSources {
  /** The cluster's secrets, for files and scripts made of them. */
  secrets?: pulumi.Output<ClusterSecrets>;
  /**
   * The plan made once every machine's address is known, as a lookup by step id (a function, which Pulumi passes
   * along as it is; absent when every address was known at once).
   */
  resolved?: pulumi.Output<PlanLookup>;
  /** What a step that comes after no other step waits for (the cluster's recorded facts, checked first). */
  first?: pulumi.Resource[];
}

/** `value(planned step, secrets)` for the step, from the resolved plan when there is one. */
function fromPlan<T>(
  step: PlannedStep,
  sources: StepSources,
  value: (planned: PlannedStep, secrets: ClusterSecrets | undefined) => T,
  needsSecrets: boolean,
): pulumi.Input<T> {
  if (needsSecrets && !sources.secrets) {
    throw new Error(`${step.id}: made of the cluster's secrets, and none were given`);
  }
  const planned = (plan: PlanLookup): PlannedStep =>
    plan(step.id) ??
    (() => {
      throw new Error(`${step.id}: not in the plan made with the machines' addresses`);
    })();
  if (sources.resolved) {
    const { resolved } = sources;
    return needsSecrets
      ? resolved.apply((plan) => sources.secrets!.apply((secrets) => value(planned(plan), secrets)))
      : resolved.apply((plan) => value(planned(plan), undefined));
  }
  if (!needsSecrets) return value(step, undefined);
  return sources.secrets!.apply((secrets) => value(step, secrets));
}

function stepFile(step: PlannedStep, index: number, sources: StepSources) {
  const file = step.files[index] as PlannedFile;
  const secret = isSecretFile(file);
  const content = fromPlan(
    step,
    sources,
    (planned, secrets) => {
      const found = planned.files[index];
      if (found?.path !== file.path) throw new Error(`${step.id}: ${file.path} moved once the addresses were known`);
      return "text" in found.content ? found.content.text : fileContent(found, secrets!);
    },
    !("text" in file.content),
  );
  // Certificates and hashes are public: their Output is secret only because it comes from all the secrets.
  const value = secret || typeof content === "string" ? content : pulumi.unsecret(pulumi.output(content));
  return { path: file.path, mode: file.mode, owner: file.owner, group: file.group, content: value, secret };
}

/** Creates the step's resource under `host`; records it in `done`. */
export function createStep(
  step: PlannedStep,
  host: StepHost,
  done: StepResources,
  sources: StepSources = {},
): MachineStep {
  const dependsOn =
    step.after.length === 0
      ? (sources.first ?? [])
      : step.after.map(
          (id) =>
            done.get(id) ??
            (() => {
              throw new Error(`${step.id}: planned after ${id}, which is not in this program (or comes later)`);
            })(),
        );
  // A script made of the secrets names only what they hash to (a restart stamp): it is shown, not a secret.
  const script = fromPlan(step, sources, (p, s) => scriptText(p.script, s!), typeof step.script !== "string");
  const deleteScript = fromPlan(step, sources, (p) => p.deleteScript, false);
  const resource = new MachineStep(
    step.id,
    {
      target: host.access.target,
      step: step.step,
      files: step.files.map((_, index) => stepFile(step, index, sources)),
      script: typeof script === "string" ? script : pulumi.unsecret(pulumi.output(script)),
      deleteScript,
      triggers: step.triggers,
      units: Object.fromEntries(
        step.units.map((u) => [u.name, u.running ? { enabled: true, active: true } : { enabled: true }]),
      ),
      ...(step.certificates ? { certificates: step.certificates } : {}),
    },
    { parent: host.resource, dependsOn },
  );
  done.set(step.id, resource);
  return resource;
}
