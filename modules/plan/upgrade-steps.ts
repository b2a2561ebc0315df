/**
 * The rollout of a new Kubernetes version, as planned steps that do nothing while every machine runs the stack's
 * version (a new cluster, a re-run) and upgrade in order when `cluster.kubernetesVersion` changes: the first control
 * plane (`kubeadm upgrade apply`), the other control planes one at a time (`kubeadm upgrade node`), each drained,
 * given its new kubelet and uncordoned once Ready; then the workers in batches of `upgrade.workerBatchSize`: the
 * first control plane drains each (evictions need the cluster's admin, which workers never hold), the worker runs
 * `kubeadm upgrade node` and its new kubelet, and the first control plane uncordons it once Ready; a batch starts
 * when the one before it is uncordoned. The order is in the steps' `after`, so `pulumi preview` lists the machines
 * in the order they change. A failed step stops the rollout there, the rest untouched; the next `pulumi up` goes on.
 */
import {
  ADMIN_KUBECONFIG,
  controlPlaneMachines,
  ignoredPreflightErrors,
  KUBELET_KUBECONFIG,
  kubeadmCertificates,
  STATIC_POD_DIR,
} from "../cluster-config";
import type { Pins } from "../pins";
import { render } from "../render";
import { isControlPlane, type MachineSpec, type StackSpec } from "../stack";
import { kubernetesArtifacts, preludeValues, STAGED_KUBELET, stepContext } from "../steps";
import type { PlannedStep } from "./types";

/** What every upgrade script needs: the machine's prelude, the wanted version, the Node, the drain's patience. */
function upgradeValues(stack: StackSpec, runsOn: MachineSpec, step: string, node: string) {
  return {
    ...preludeValues(runsOn.name, step),
    version: `v${stack.cluster.kubernetesVersion}`,
    adminConf: ADMIN_KUBECONFIG,
    node,
    drainTimeoutSeconds: stack.upgrade.drainTimeoutSeconds,
  };
}

function upgradeStep(
  runsOn: MachineSpec,
  step: string,
  title: string,
  script: string,
  after: string[],
  id = `${runsOn.name}-${step}`,
): PlannedStep {
  return { id, step, machine: runsOn.name, title, files: [], script, deleteScript: "", units: [], triggers: [], after };
}

/** The machine's own upgrade: kubeadm's part for its role, then its kubelet (see the module comment). */
function machineUpgrade(stack: StackSpec, pins: Pins, machine: MachineSpec, first: boolean, after: string[]) {
  const kubelet = kubernetesArtifacts(stepContext(stack, machine, pins)).find((a) => a.name === "kubelet")!;
  const controlPlane = isControlPlane(machine);
  const script = render("scripts/kubernetes-upgrade.sh.hbs", {
    ...upgradeValues(stack, machine, "kubernetes-upgrade", machine.name),
    kubeletConf: KUBELET_KUBECONFIG,
    firstControlPlane: first,
    otherControlPlane: controlPlane && !first,
    controlPlane,
    apiServerManifest: `${STATIC_POD_DIR}/kube-apiserver.yaml`,
    kubelet: kubelet.dest,
    kubeletSha256: kubelet.sha256,
    staged: STAGED_KUBELET,
    // What the stack's own choices make fail on purpose at init and join fails kubeadm's upgrade checks too.
    ignorePreflightErrors: ignoredPreflightErrors(stack),
    // A worker reads its own Node with its kubelet's credentials; a control plane has the admin's.
    ownKubeconfig: controlPlane ? ADMIN_KUBECONFIG : KUBELET_KUBECONFIG,
  });
  const role = first ? "kubeadm upgrade apply" : "kubeadm upgrade node";
  const step = upgradeStep(
    machine,
    "kubernetes-upgrade",
    `Upgrade to Kubernetes ${stack.cluster.kubernetesVersion} when it runs another version: ${role}, ` +
      `${controlPlane ? "drain, " : ""}the new kubelet, wait until Ready${controlPlane ? ", uncordon" : ""}`,
    script,
    after,
  );
  // kubeadm's upgrade renews the control plane's certificates.
  return controlPlane ? { ...step, certificates: controlPlaneCertificates(stack) } : step;
}

/** The paths of kubeadm's certificates on a control plane of this stack. */
function controlPlaneCertificates(stack: StackSpec): string[] {
  return kubeadmCertificates(!stack.etcd?.external).map((c) => c.path);
}

/**
 * On a control plane, once it runs the stack's version: `kubeadm certs renew all` and its static pods restarted when
 * `certificates.renewal` has a value not applied there yet (preview shows the step's update; nothing otherwise).
 */
function certificateRenewal(stack: StackSpec, machine: MachineSpec, after: string[]): PlannedStep {
  const step = upgradeStep(
    machine,
    "certificate-renewal",
    "Renew kubeadm's certificates (kubeadm certs renew all) and restart the static pods when certificates.renewal " +
      "has a new value",
    render("scripts/certificate-renewal.sh.hbs", {
      ...preludeValues(machine.name, "certificate-renewal"),
      renewal: stack.certificates.renewal,
      adminConf: ADMIN_KUBECONFIG,
    }),
    after,
  );
  // Created once the control plane has joined: its first reading is of the certificates its init or join made.
  return { ...step, certificates: controlPlaneCertificates(stack) };
}

/**
 * The control planes' upgrades and certificate renewals, one control plane at a time after `after`; returns the
 * steps and the id of the last (the control plane then runs the stack's version everywhere).
 */
export function planControlPlaneUpgrades(
  stack: StackSpec,
  pins: Pins,
  after: string,
): { steps: PlannedStep[]; done: string } {
  const steps: PlannedStep[] = [];
  let done = after;
  controlPlaneMachines(stack).forEach((machine, index) => {
    const upgrade = machineUpgrade(stack, pins, machine, index === 0, [done]);
    const renewal = certificateRenewal(stack, machine, [upgrade.id]);
    steps.push(upgrade, renewal);
    done = renewal.id;
  });
  return { steps, done };
}

/** The workers in stack order, `size` at a time. */
function batches(workers: MachineSpec[], size: number): MachineSpec[][] {
  const out: MachineSpec[][] = [];
  for (let i = 0; i < workers.length; i += size) out.push(workers.slice(i, i + size));
  return out;
}

/** The workers' upgrades, batch after batch, the first batch after `after` (see the module comment). */
export function planWorkerUpgrades(stack: StackSpec, pins: Pins, after: string): PlannedStep[] {
  const [first] = controlPlaneMachines(stack);
  if (!first) return [];
  const version = stack.cluster.kubernetesVersion;
  const steps: PlannedStep[] = [];
  let previousBatch = [after];
  for (const batch of batches(
    stack.machines.filter((m) => !isControlPlane(m)),
    stack.upgrade.workerBatchSize,
  )) {
    previousBatch = batch.map((worker) => {
      const drain = upgradeStep(
        first,
        "upgrade-drain",
        `Drain ${worker.name} before its upgrade to Kubernetes ${version} (when it runs another version)`,
        render("scripts/upgrade-drain.sh.hbs", upgradeValues(stack, first, "upgrade-drain", worker.name)),
        previousBatch,
        `${first.name}-upgrade-drain-${worker.name}`,
      );
      const upgrade = machineUpgrade(stack, pins, worker, false, [drain.id]);
      const uncordon = upgradeStep(
        first,
        "upgrade-uncordon",
        `Uncordon ${worker.name} once Ready at Kubernetes ${version} (when nodeforge cordoned it)`,
        render("scripts/upgrade-uncordon.sh.hbs", upgradeValues(stack, first, "upgrade-uncordon", worker.name)),
        [upgrade.id],
        `${first.name}-upgrade-uncordon-${worker.name}`,
      );
      steps.push(drain, upgrade, uncordon);
      return uncordon.id;
    });
  }
  return steps;
}
