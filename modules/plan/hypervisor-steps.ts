/**
 * A hypervisor's steps: preparing it (libvirt, storage pool, image), then one step per VM that makes the VM (disk,
 * cloud-init seed, domain) and waits until it answers SSH with its pinned host key. The VM's own node steps come
 * after its VM step: it then is a machine like any other.
 */
import type { HypervisorSpec, MachineSpec, StackSpec } from "../stack";
import {
  domainXml,
  metaData,
  networkConfig,
  PREPARE_HYPERVISOR_STEP,
  prepareHypervisorScript,
  unprepareHypervisorScript,
  userData,
  vmDeleteScript,
  vmPaths,
  vmScript,
  vmStepName,
} from "../vm";
import type { PlannedFile, PlannedStep } from "./types";

function vmOf(stack: StackSpec, name: string): MachineSpec {
  const vm = stack.machines.find((m) => m.name === name && m.vm);
  if (!vm) throw new Error(`${stack.file}: no VM named ${name}`);
  return vm;
}

function vmStep(stack: StackSpec, hypervisor: HypervisorSpec, vm: MachineSpec, after: string): PlannedStep {
  const settings = vm.vm!;
  const cluster = stack.cluster.name;
  const paths = vmPaths(hypervisor, vm.name);
  const text = (path: string, content: string): PlannedFile => ({
    path,
    mode: "0644",
    owner: "root",
    group: "root",
    content: { text: content },
  });
  const files: PlannedFile[] = [
    text(paths.domainXml, domainXml(cluster, hypervisor, vm, settings)),
    {
      path: paths.userData,
      mode: "0600",
      owner: "root",
      group: "root",
      content: { fromSecrets: (s) => userData(vm, secretsOf(s.vms, vm.name)) },
    },
    text(paths.metaData, metaData(cluster, vm)),
    text(paths.networkConfig, networkConfig(cluster, vm, settings)),
  ];
  return {
    id: `${hypervisor.name}-${vmStepName(vm.name)}`,
    step: vmStepName(vm.name),
    machine: hypervisor.name,
    title: `Make VM ${vm.name} (disk, cloud-init seed, domain), start it and wait until it answers SSH`,
    files,
    // The script names the VM's public host key (what it waits to see), never a private one.
    script: { fromSecrets: (s) => vmScript(hypervisor, vm, secretsOf(s.vms, vm.name).hostPublicKey) },
    deleteScript: vmDeleteScript(hypervisor, vm),
    units: [],
    // What a change restarts: a preview that shows this line changing shows a restart.
    triggers: [`restarts on change: ${settings.cpus} cpus, ${settings.memoryMiB} MiB memory`],
    after: [after],
  };
}

function secretsOf<T>(vms: Record<string, T>, name: string): T {
  const found = vms[name];
  if (!found) throw new Error(`no host key generated for VM ${name}`);
  return found;
}

/** The hypervisor's steps, and the id of each of its VMs' step (what the VM's own steps come after). */
export function planHypervisorSteps(
  stack: StackSpec,
  hypervisor: HypervisorSpec,
): { steps: PlannedStep[]; vmSteps: Map<string, string> } {
  const prepare: PlannedStep = {
    id: `${hypervisor.name}-${PREPARE_HYPERVISOR_STEP}`,
    step: PREPARE_HYPERVISOR_STEP,
    machine: hypervisor.name,
    title: "Install libvirt and qemu where missing, define the storage pool, fetch and verify the image",
    files: [],
    script: prepareHypervisorScript(hypervisor),
    deleteScript: unprepareHypervisorScript(hypervisor, stack.destroy.removePackages),
    units: [],
    triggers: [],
    after: [],
  };
  const steps = [prepare];
  const vmSteps = new Map<string, string>();
  for (const name of hypervisor.vms) {
    const step = vmStep(stack, hypervisor, vmOf(stack, name), prepare.id);
    steps.push(step);
    vmSteps.set(name, step.id);
  }
  return { steps, vmSteps };
}
