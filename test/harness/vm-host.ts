/**
 * The lab's hypervisor: this machine, reached through a loopback sshd (its own host key, pinned), with a private
 * libvirtd (libvirt.ts) and the lab's Debian 12 VM image (vm-image.ts, cached). Its VMs attach to the lab's bridge,
 * beside the nspawn machines: they install from the lab's apt mirror (cloud-init writes it as their only apt source),
 * download from its artifact mirror and pull through its registry, and use the host's bridge address as gateway and
 * resolver, as setLabSiteNetwork gives the nspawn machines.
 *
 * stop() destroys what libvirt still runs, stops libvirtd and sshd by their PIDs, and removes the storage pool's
 * directory and the files nodeforge's steps left on this host (/var/lib/nodeforge/vms and its stamps of them).
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { sourcesListLine } from "./apt-mirror";
import { startLibvirt, type Libvirt } from "./libvirt";
import type { Lab } from "./machines";
import { startSshd, type Sshd } from "./sshd";
import { labVmImage, type VmImage } from "./vm-image";

/** A VM of the lab, as the stack declares it. */
export interface LabVm {
  name: string;
  role?: "worker" | "control-plane";
  cpus?: number;
  memoryMiB?: number;
}

export interface VmHost {
  libvirt: Libvirt;
  sshd: Sshd;
  image: VmImage;
  /** The storage pool's directory (disks and seeds). */
  poolDir: string;
  /** The pool's name in libvirt. */
  poolName: string;
  /** The VM's address on the lab's bridge: .(100 + index). */
  address(index: number): string;
  /** The `hypervisors:` block of the lab's stack file for these VMs. */
  yaml(vms: LabVm[]): string;
  /** The config secrets that block names: the hypervisor's SSH key. */
  secrets: Record<string, string>;
  stop(): Promise<void>;
}

/** The Pulumi config key of the hypervisor's SSH private key in the lab's stack. */
export const HYPERVISOR_KEY_CONFIG = "hypervisorSshKey";

/** Where nodeforge's VM steps keep their files on the hypervisor (modules/vm/paths.ts). */
const VM_FILES_DIR = "/var/lib/nodeforge/vms";

export async function startVmHost(lab: Lab): Promise<VmHost> {
  const image = await labVmImage();
  const libvirt = await startLibvirt();
  let sshd: Sshd | undefined;
  const poolDir = mkdtempSync("/var/tmp/nodeforge-lab-pool-");
  const poolName = `nodeforge-lab-${process.pid}`;
  const names: string[] = [];
  // libvirt.ts and sshd.ts stop their daemons when the process exits however it ends; the disks go with them.
  const removeFiles = (): void => {
    rmSync(poolDir, { recursive: true, force: true });
    for (const name of names) rmSync(join(VM_FILES_DIR, name), { recursive: true, force: true });
  };
  process.once("exit", removeFiles);
  const stop = async (): Promise<void> => {
    process.removeListener("exit", removeFiles);
    await libvirt.stop();
    await sshd?.stop();
    removeFiles();
    // The hypervisor steps' state on this host, where nothing else is left in it.
    for (const dir of [VM_FILES_DIR, "/var/lib/nodeforge/stamps", "/var/lib/nodeforge"]) {
      if (existsSync(dir) && readdirSync(dir).length === 0) rmSync(dir, { recursive: true });
    }
  };
  try {
    sshd = await startSshd({ listenAddress: "127.0.0.1" });
  } catch (error) {
    await stop();
    throw error;
  }
  const prefix = lab.network.hostAddress.split(".").slice(0, 3).join(".");
  const address = (index: number) => `${prefix}.${100 + index}`;
  const gateway = lab.network.hostAddress;
  const yaml = (vms: LabVm[]): string => {
    names.push(...vms.map((vm) => vm.name));
    const memory = vms.reduce((sum, vm) => sum + (vm.memoryMiB ?? 1536), 0);
    const cpus = vms.reduce((sum, vm) => sum + (vm.cpus ?? 1), 0);
    return [
      "hypervisors:",
      "  - name: lab-host",
      `    address: ${sshd!.host}`,
      `    hostKey: ${sshd!.hostKey}`,
      `    ssh: { port: ${sshd!.port}, user: root, privateKeyConfig: ${HYPERVISOR_KEY_CONFIG} }`,
      `    uri: "${libvirt.uri}"`,
      `    storagePool: { name: ${poolName}, path: ${poolDir} }`,
      `    network: { bridge: ${lab.network.bridge} }`,
      `    image: { path: ${image.path}, sha256: "${image.sha256}", format: ${image.format} }`,
      `    capacity: { cpus: ${cpus}, memoryMiB: ${memory} }`,
      "    vms:",
      ...vms.flatMap((vm, i) => [
        `      - name: ${vm.name}`,
        `        role: ${vm.role ?? "worker"}`,
        "        os: debian-12",
        `        cpus: ${vm.cpus ?? 1}`,
        `        memoryMiB: ${vm.memoryMiB ?? 1536}`,
        "        diskGiB: 8",
        `        address: ${address(i)}`,
        `        prefixLength: ${lab.network.cidr.split("/")[1]}`,
        `        gateway: ${gateway}`,
        `        nameservers: [${gateway}]`,
        `        aptSources: [${JSON.stringify(sourcesListLine(lab.mirrorUrl).trim())}]`,
      ]),
    ].join("\n");
  };
  return {
    libvirt,
    sshd,
    image,
    poolDir,
    poolName,
    address,
    yaml,
    secrets: { [HYPERVISOR_KEY_CONFIG]: sshd.clientPrivateKey },
    stop,
  };
}
