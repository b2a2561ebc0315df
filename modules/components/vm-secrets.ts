/**
 * What the cluster's VMs are made with: each VM's host key (VmHostKeys, generated once, a Pulumi secret) and the
 * public key of the SSH key nodeforge logs in to it with (from the private key its SSH settings name). The VM's
 * public host key is also how every connection to it is pinned.
 */
import * as pulumi from "@pulumi/pulumi";
import { VmHostKeys } from "../pki";
import type { VmSecrets } from "../plan";
import type { MachineSpec } from "../stack";
import type { SecretLookup } from "./connection";

/** ssh2's key parser (ssh2 ships no types of its own; node-ssh depends on it). */
const { utils } = require("ssh2") as {
  utils: { parseKey(key: string): { type: string; getPublicSSH(): Buffer } | Error };
};

/** `<type> <base64>` of an OpenSSH or PEM private key; the error names the config key, never the key. */
export function publicKeyOf(privateKey: string, configKey: string): string {
  const parsed = utils.parseKey(privateKey);
  if (parsed instanceof Error)
    throw new Error(`config ${configKey}: not a private key ssh2 can read: ${parsed.message}`);
  return `${parsed.type} ${parsed.getPublicSSH().toString("base64")}`;
}

export interface ClusterVms {
  /** Each VM's seed material by name: a secret. */
  secrets: pulumi.Output<Record<string, VmSecrets>>;
  /** Each VM's public host key (not secret), for pinning. */
  hostKey(vm: string): pulumi.Output<string>;
}

export function clusterVms(
  name: string,
  vms: MachineSpec[],
  secret: SecretLookup,
  opts: pulumi.CustomResourceOptions,
): ClusterVms | undefined {
  if (vms.length === 0) return undefined;
  const keys = new VmHostKeys(`${name}-vm-host-keys`, { vms: vms.map((vm) => vm.name) }, opts);
  const logins = pulumi.all(
    Object.fromEntries(
      vms.map((vm) => [
        vm.name,
        secret(vm.ssh.privateKeyConfig).apply((key) => publicKeyOf(key, vm.ssh.privateKeyConfig)),
      ]),
    ),
  );
  const secrets = pulumi.secret(
    pulumi.all([keys.keys, logins]).apply(([hostKeys, authorized]) =>
      Object.fromEntries(
        vms.map((vm): [string, VmSecrets] => {
          const key = hostKeys[vm.name];
          if (!key) throw new Error(`VmHostKeys has no key for VM ${vm.name}`);
          return [
            vm.name,
            { hostPrivateKey: key.privateKey, hostPublicKey: key.publicKey, authorizedKey: authorized[vm.name]! },
          ];
        }),
      ),
    ),
  );
  return {
    secrets,
    hostKey: (vm) => pulumi.unsecret(keys.keys.apply((k) => k[vm]?.publicKey ?? "")),
  };
}
