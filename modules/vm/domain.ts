/** A VM's libvirt domain XML, from templates/vm/domain.xml.hbs. */
import { render } from "../render";
import type { HypervisorSpec, MachineSpec, VmSettings } from "../stack";
import { vmPaths } from "./paths";
import { vmMac, vmUuid } from "./seed";

/**
 * What the guest is, per architecture: x86_64 on the pc machine (BIOS; the seed on its IDE controller, which every
 * x86 kernel's initramfs drives: a cloud kernel may lack AHCI), aarch64 on virt (UEFI, as it needs; SCSI).
 */
const GUEST = {
  amd64: { guestArch: "x86_64", machineType: "pc", efi: false, apic: true, cdromBus: "ide", cdromDev: "hdc" },
  arm64: { guestArch: "aarch64", machineType: "virt", efi: true, apic: false, cdromBus: "scsi", cdromDev: "sda" },
} as const;

export function domainXml(cluster: string, hypervisor: HypervisorSpec, vm: MachineSpec, settings: VmSettings): string {
  const paths = vmPaths(hypervisor, vm.name);
  const network = hypervisor.network;
  return render("vm/domain.xml.hbs", {
    ...GUEST[vm.arch],
    name: vm.name,
    uuid: vmUuid(cluster, vm.name),
    cpus: settings.cpus,
    memoryMiB: settings.memoryMiB,
    disk: paths.disk,
    seed: paths.seed,
    consoleLog: paths.consoleLog,
    mac: vmMac(cluster, vm.name),
    bridge: "bridge" in network ? network.bridge : "",
    libvirtNetwork: "libvirtNetwork" in network ? network.libvirtNetwork : "",
  });
}
