/** Where a hypervisor keeps what nodeforge makes for its VMs. */
import type { HypervisorSpec } from "../stack";
import { STATE_DIR } from "../steps";

/** nodeforge's files for each VM (domain XML, cloud-init seed files) on its hypervisor: `<dir>/<vm>/`. */
export const VM_FILES_DIR = `${STATE_DIR}/vms`;

export interface VmPaths {
  dir: string;
  domainXml: string;
  userData: string;
  metaData: string;
  networkConfig: string;
  /** The copy-on-write disk, in the storage pool. */
  disk: string;
  /** The NoCloud seed image, in the storage pool. */
  seed: string;
  /** The serial console's log (the boot, as the VM printed it). */
  consoleLog: string;
}

/** The hypervisor's image in its pool, named by checksum: VMs made before an image change keep backing onto theirs. */
export function baseImagePath(hypervisor: HypervisorSpec): string {
  const { image, storagePool } = hypervisor;
  return `${storagePool.path}/nodeforge-base-${image.sha256.slice(0, 16)}.${image.format}`;
}

export function vmPaths(hypervisor: HypervisorSpec, vm: string): VmPaths {
  const dir = `${VM_FILES_DIR}/${vm}`;
  return {
    dir,
    domainXml: `${dir}/domain.xml`,
    userData: `${dir}/user-data`,
    metaData: `${dir}/meta-data`,
    networkConfig: `${dir}/network-config`,
    disk: `${hypervisor.storagePool.path}/${vm}.qcow2`,
    seed: `${hypervisor.storagePool.path}/${vm}-seed.iso`,
    // Beside the disk: libvirt's log writer reaches the pool, and nodeforge's own state directory is root's alone.
    consoleLog: `${hypervisor.storagePool.path}/${vm}-console.log`,
  };
}
