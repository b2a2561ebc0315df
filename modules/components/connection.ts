/** Turns a machine's SSH settings plus its secrets into the SSH target every nodeforge resource takes. */
import * as pulumi from "@pulumi/pulumi";
import { sudoPasswordLine, type BastionTarget, type SshTarget } from "../remote";
import type { MachineSpec } from "../stack";

/** Looks up a Pulumi config secret by key name (index.ts passes `config.requireSecret`). */
export type SecretLookup = (configKey: string) => pulumi.Output<string>;

export interface MachineAccess {
  /** For RemoteScript, RemoteFile and UnitState (node-ssh). A secret: it carries the private keys and password. */
  target: pulumi.Output<SshTarget>;
}

/** What reaching a machine needs: a Kubernetes node's MachineSpec, or an external etcd member's EtcdMachineSpec. */
export type ReachableMachine = Pick<MachineSpec, "name" | "address" | "hostKey" | "ssh">;

/** The sudo password as given, once it is known to fit the stdin protocol (one line; command-line.ts). */
function checkedSudoPassword(machine: ReachableMachine, password: string): string {
  try {
    sudoPasswordLine(password);
    return password;
  } catch (error) {
    throw new Error(`${machine.name}: config ${machine.ssh.sudoPasswordConfig}: ${(error as Error).message}`);
  }
}

/** How the machine is reached: its address and host key when other resources give them (default: the spec's). */
export interface Reach {
  address: pulumi.Input<string>;
  hostKey: pulumi.Input<string>;
}

export function machineAccess(machine: ReachableMachine, secret: SecretLookup, reach?: Reach): MachineAccess {
  const { ssh } = machine;
  const { bastion } = ssh;
  const privateKey = pulumi.secret(secret(ssh.privateKeyConfig));
  const bastionKey = bastion ? pulumi.secret(secret(bastion.privateKeyConfig)) : undefined;
  const sudoPassword = ssh.sudoPasswordConfig ? pulumi.secret(secret(ssh.sudoPasswordConfig)) : undefined;
  const address = reach?.address ?? machine.address;
  const pinned = reach?.hostKey ?? machine.hostKey;
  const target = pulumi.secret(
    pulumi
      .all([privateKey, sudoPassword, bastionKey, address, pinned])
      .apply(([key, password, jumpKey, host, hostKey]): SshTarget => {
        const via: BastionTarget | undefined =
          bastion && jumpKey !== undefined
            ? {
                host: bastion.address,
                port: bastion.port,
                user: bastion.user,
                privateKey: jumpKey,
                hostKey: bastion.hostKey,
              }
            : undefined;
        return {
          machine: machine.name,
          host,
          port: ssh.port,
          user: ssh.user,
          privateKey: key,
          hostKey,
          sudo: ssh.sudo,
          ...(password === undefined ? {} : { sudoPassword: checkedSudoPassword(machine, password) }),
          connectTimeoutSeconds: ssh.connectTimeoutSeconds,
          retries: ssh.retries,
          ...(via ? { bastion: via } : {}),
        };
      }),
  );
  return { target };
}
