/** The whole stack file as planned steps: every step of every machine, each after what it waits for. */
import { etcdClusterOf } from "../etcd";
import { DEFAULT_PINS, type Pins } from "../pins";
import { isControlPlane, type MachineSpec, type StackSpec } from "../stack";
import { planClusterSteps } from "./cluster-steps";
import { planEtcdMemberStep } from "./etcd-steps";
import { planHypervisorSteps } from "./hypervisor-steps";
import { planNodeSteps } from "./node-steps";
import type { PlannedStep } from "./types";

/**
 * Hypervisors and their VMs, external etcd members (in parallel), the control-plane machines' node steps, the other machines' (their kubelet
 * configured once every control plane is prepared), then the cluster's bootstrap steps. Listed so that every step
 * comes after the steps it names in `after`.
 */
export function planCluster(stack: StackSpec, pins: Pins = DEFAULT_PINS): PlannedStep[] {
  const etcd = etcdClusterOf(stack);
  const steps: PlannedStep[] = [];
  /** Machine name -> the id of its last step: done means the machine is prepared. */
  const ready = new Map<string, string>();
  const add = (machine: string, planned: PlannedStep[]) => {
    steps.push(...planned);
    const last = planned[planned.length - 1];
    if (!last) throw new Error(`${stack.file}: ${machine}: no step applies to this machine`);
    ready.set(machine, last.id);
  };
  // Hypervisors first: a VM's node steps come after the step that makes the VM.
  const vmSteps = new Map<string, string>();
  for (const hypervisor of stack.hypervisors) {
    const planned = planHypervisorSteps(stack, hypervisor);
    steps.push(...planned.steps);
    for (const [vm, id] of planned.vmSteps) vmSteps.set(vm, id);
  }
  const onMachine = (machine: MachineSpec, planned: PlannedStep[]): PlannedStep[] => {
    const made = vmSteps.get(machine.name);
    if (made && planned[0]) planned[0] = { ...planned[0], after: [made, ...planned[0].after] };
    return planned;
  };
  for (const machine of stack.etcd?.external.machines ?? []) {
    add(machine.name, [planEtcdMemberStep(stack, machine, etcd!, pins)]);
  }
  const controlPlanes = stack.machines.filter(isControlPlane);
  for (const machine of controlPlanes) add(machine.name, onMachine(machine, planNodeSteps(stack, machine, pins, [])));
  const controlPlanesReady = controlPlanes.map((m) => ready.get(m.name)!);
  for (const machine of stack.machines.filter((m) => !isControlPlane(m))) {
    add(machine.name, onMachine(machine, planNodeSteps(stack, machine, pins, controlPlanesReady)));
  }
  const readyOf = (machine: string): string =>
    ready.get(machine) ??
    (() => {
      throw new Error(`${stack.file}: no machine named ${machine} in the plan`);
    })();
  steps.push(...planClusterSteps(stack, pins, etcd, readyOf));
  return steps;
}

/** The steps that run on one machine, in plan order. */
export function stepsOn(plan: readonly PlannedStep[], machine: string): PlannedStep[] {
  return plan.filter((step) => step.machine === machine);
}
