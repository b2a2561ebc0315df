/** The scripts of a hypervisor's steps: preparing it (libvirt, pool, image), and making or removing one VM. */
import { osProfile } from "../os";
import { render } from "../render";
import type { HypervisorSpec, MachineSpec } from "../stack";
import { scriptValues } from "../steps";
import { baseImagePath, vmPaths } from "./paths";

export const PREPARE_HYPERVISOR_STEP = "prepare-hypervisor";

/** The VM step's name on its hypervisor. */
export function vmStepName(vm: string): string {
  return `vm-${vm}`;
}

/** How long a VM may take from start to answering SSH (TCG emulation boots slowly), and to shut down. */
export const VM_BOOT_TIMEOUT_SECONDS = 600;
export const VM_SHUTDOWN_TIMEOUT_SECONDS = 120;

/** The tools the VM steps run, and (only where libvirt does not answer yet) the daemon and qemu, per architecture. */
const TOOL_PACKAGES = ["libvirt-clients", "qemu-utils", "xorriso", "openssh-client", "util-linux"];
const DAEMON_PACKAGES = {
  amd64: ["libvirt-daemon-system", "qemu-system-x86"],
  arm64: ["libvirt-daemon-system", "qemu-system-arm", "qemu-efi-aarch64"],
};

function poolValues(hypervisor: HypervisorSpec): Record<string, unknown> {
  return {
    uri: hypervisor.uri,
    poolName: hypervisor.storagePool.name,
    poolPath: hypervisor.storagePool.path,
    baseImage: baseImagePath(hypervisor),
  };
}

export function prepareHypervisorScript(hypervisor: HypervisorSpec): string {
  const os = osProfile(hypervisor.os);
  const { image, network } = hypervisor;
  return render("scripts/prepare-hypervisor.sh.hbs", {
    ...scriptValues(hypervisor.name, os, PREPARE_HYPERVISOR_STEP),
    ...poolValues(hypervisor),
    toolPackages: TOOL_PACKAGES,
    daemonPackages: DAEMON_PACKAGES[hypervisor.arch],
    bridge: "bridge" in network ? network.bridge : "",
    libvirtNetwork: "libvirtNetwork" in network ? network.libvirtNetwork : "",
    imageUrl: image.url ?? "",
    imagePath: image.path ?? "",
    imageSha256: image.sha256,
  });
}

export function unprepareHypervisorScript(hypervisor: HypervisorSpec, removePackages: boolean): string {
  const os = osProfile(hypervisor.os);
  return render("scripts/unprepare-hypervisor.sh.hbs", {
    ...scriptValues(hypervisor.name, os, PREPARE_HYPERVISOR_STEP),
    ...poolValues(hypervisor),
    removePackages,
  });
}

/** Makes (or changes) the VM and waits until it answers SSH with `hostPublicKey`; carries no secret. */
export function vmScript(hypervisor: HypervisorSpec, vm: MachineSpec, hostPublicKey: string): string {
  const os = osProfile(hypervisor.os);
  const paths = vmPaths(hypervisor, vm.name);
  return render("scripts/vm.sh.hbs", {
    ...scriptValues(hypervisor.name, os, vmStepName(vm.name)),
    ...poolValues(hypervisor),
    ...paths,
    name: vm.name,
    imageFormat: hypervisor.image.format,
    diskSize: `${vm.vm!.diskGiB}G`,
    address: vm.address,
    sshPort: vm.ssh.port,
    hostPublicKey,
    bootTimeoutSeconds: VM_BOOT_TIMEOUT_SECONDS,
    shutdownTimeoutSeconds: VM_SHUTDOWN_TIMEOUT_SECONDS,
  });
}

export function vmDeleteScript(hypervisor: HypervisorSpec, vm: MachineSpec): string {
  const os = osProfile(hypervisor.os);
  return render("scripts/vm-delete.sh.hbs", {
    ...scriptValues(hypervisor.name, os, vmStepName(vm.name)),
    ...poolValues(hypervisor),
    ...vmPaths(hypervisor, vm.name),
    name: vm.name,
  });
}
