/**
 * nodeforge's machine steps with one flaw for each rule of its policy pack (modules/policy-pack), for the pack's test
 * (test/integration/policy-pack.test.ts), which only previews it. No stack file can carry these flaws: validation
 * refuses an empty host key and an even number of control planes, and the mode of a secret file, the kubelet's
 * drop-in and the kubelet release are nodeforge's, one release for every machine. So the flaws go into nodeforge's
 * own plan of the stack file that config `nodeforge:stackFile` names (cp-1 and worker-1..3), and nodeforge's own
 * executor makes the MachineStep resources from it, as the Cluster component does.
 */
import * as pulumi from "@pulumi/pulumi";
import { parseDocument } from "yaml";
import { machineAccess, type MachineAccess } from "../../../modules/components/connection";
import { createStep, type StepResources } from "../../../modules/components/steps";
import { generateClusterSecrets, planCluster, type PlannedFile, type PlannedStep } from "../../../modules/plan";
import type { SshTarget } from "../../../modules/remote";
import { loadStackFile, type MachineSpec } from "../../../modules/stack";
import { KUBELET_CONFIG_DIR } from "../../../modules/steps";

const config = new pulumi.Config("nodeforge");
const stack = loadStackFile(config.require("stackFile"));
const version = stack.cluster.kubernetesVersion;

/** odd-control-plane-count: worker-1 is a second control plane with a stacked etcd member. */
const machines: MachineSpec[] = stack.machines.map((m) =>
  m.name === "worker-1" ? { ...m, role: "control-plane" } : m,
);

/** The step's files with `change` applied to the one at a path `match` accepts. */
function changeFile(step: PlannedStep, match: (path: string) => boolean, change: (f: PlannedFile) => PlannedFile) {
  return { ...step, files: step.files.map((f) => (match(f.path) ? change(f) : f)) };
}

function flawed(step: PlannedStep): PlannedStep {
  switch (step.id) {
    case "cp-1-kubeadm-init": // secret-files-owner-only: the cluster CA's key readable by everyone
      return changeFile(
        step,
        (p) => p === "/etc/kubernetes/pki/ca.key",
        (f) => ({ ...f, mode: "0644" }),
      );
    case "worker-2-configure-kubelet": // kubelet-anonymous-auth-off: the drop-in turns anonymous access on
      return changeFile(
        step,
        (p) => p.startsWith(`${KUBELET_CONFIG_DIR}/`),
        (f) => {
          const dropIn = parseDocument("text" in f.content ? f.content.text : "");
          dropIn.setIn(["authentication", "anonymous", "enabled"], true);
          return { ...f, content: { text: dropIn.toString() } };
        },
      );
    case "worker-2-install-kubelet": // kubelet-version-skew: 4 minor versions older than the control plane
      return { ...step, script: String(step.script).replaceAll(`/v${version}/`, "/v1.32.4/") };
    case "worker-3-install-kubelet": // kubelet-version-skew: newer than the control plane
      return { ...step, script: String(step.script).replaceAll(`/v${version}/`, "/v1.37.0/") };
    default:
      return step;
  }
}

/** host-keys-pinned: worker-3 is reached with no host key at all (an empty one the provider's check refuses). */
function access(machine: MachineSpec): MachineAccess {
  const { target } = machineAccess(machine, (key) => config.requireSecret(key));
  if (machine.name !== "worker-3") return { target };
  return { target: pulumi.secret(target.apply(({ hostKey: _, ...rest }) => rest as SshTarget)) };
}

const parent = new pulumi.ComponentResource("nodeforge:test:PolicyBreaking", stack.cluster.name);
const secrets = pulumi.secret(generateClusterSecrets(stack));
const done: StepResources = new Map();
for (const step of planCluster({ ...stack, machines }).map(flawed)) {
  const machine = machines.find((m) => m.name === step.machine)!;
  createStep(step, { resource: parent, access: access(machine) }, done, { secrets });
}
