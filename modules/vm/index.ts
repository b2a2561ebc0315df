/** Virtual machines on hypervisors: their libvirt domains, cloud-init seeds and the scripts that make them (pure). */
export { domainXml } from "./domain";
export { baseImagePath, VM_FILES_DIR, vmPaths, type VmPaths } from "./paths";
export {
  PREPARE_HYPERVISOR_STEP,
  prepareHypervisorScript,
  unprepareHypervisorScript,
  VM_BOOT_TIMEOUT_SECONDS,
  vmDeleteScript,
  vmScript,
  vmStepName,
} from "./scripts";
export { metaData, networkConfig, userData, vmMac, vmUuid, type VmSecrets } from "./seed";
