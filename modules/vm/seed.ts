/**
 * A VM's cloud-init NoCloud seed: user-data (its host key, the key nodeforge logs in with, apt sources), meta-data
 * (instance id, host name) and network-config (v2: the static address on the interface with the VM's MAC).
 */
import { render } from "../render";
import type { MachineSpec, VmSettings } from "../stack";
import { sha256 } from "../steps";

/** A VM's host key pair (VmHostKeys) and the public key of the SSH key nodeforge logs in with. */
export interface VmSecrets {
  /** OpenSSH private key file text. */
  hostPrivateKey: string;
  /** `ssh-ed25519 <base64>`: pinned for every connection to the VM. */
  hostPublicKey: string;
  /** `<type> <base64>` of the private key the VM's SSH settings name: authorized for the login user. */
  authorizedKey: string;
}

/** A locally administered unicast MAC (qemu's 52:54:00 prefix), the same for the same cluster and VM every run. */
export function vmMac(cluster: string, vm: string): string {
  const hash = sha256(`${cluster}/${vm}`);
  return `52:54:00:${hash.slice(0, 2)}:${hash.slice(2, 4)}:${hash.slice(4, 6)}`;
}

/**
 * The VM's libvirt UUID, the same for the same cluster and VM every run: libvirt redefines a domain (new cpus or
 * memory) only under the UUID it was defined with.
 */
export function vmUuid(cluster: string, vm: string): string {
  const hex = sha256(`uuid/${cluster}/${vm}`);
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** The VM's user-data: secret as a whole (its private host key). */
export function userData(vm: MachineSpec, secrets: VmSecrets): string {
  return render("vm/user-data.yaml.hbs", {
    name: vm.name,
    hostPrivateKey: secrets.hostPrivateKey,
    hostPublicKey: secrets.hostPublicKey,
    authorizedKey: secrets.authorizedKey,
    root: vm.ssh.user === "root",
    user: vm.ssh.user,
    aptSources: vm.vm?.aptSources ? `${vm.vm.aptSources.join("\n")}\n` : "",
  });
}

/**
 * The instance id stays for the VM's life: a new one would make cloud-init run its first-boot modules again (a new
 * host key among them).
 */
export function metaData(cluster: string, vm: MachineSpec): string {
  return render("vm/meta-data.yaml.hbs", { instanceId: `nodeforge-${cluster}-${vm.name}`, name: vm.name });
}

export function networkConfig(cluster: string, vm: MachineSpec, settings: VmSettings): string {
  return render("vm/network-config.yaml.hbs", {
    mac: vmMac(cluster, vm.name),
    cidr: `${vm.address}/${settings.prefixLength}`,
    gateway: settings.gateway ?? "",
    nameservers: settings.nameservers,
  });
}
