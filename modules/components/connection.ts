/** Turns a machine's SSH settings plus its secrets into the SSH target every nodeforge resource takes. */
import * as pulumi from "@pulumi/pulumi";
import { sudoPasswordLine } from "../remote/command-line";
import type { BastionTarget, SshTarget } from "../remote/types";
import type { MachineSpec } from "../stack/types";

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

export function machineAccess(machine: ReachableMachine, secret: SecretLookup): MachineAccess {
  const { ssh } = machine;
  const { bastion } = ssh;
  const privateKey = pulumi.secret(secret(ssh.privateKeyConfig));
  const bastionKey = bastion ? pulumi.secret(secret(bastion.privateKeyConfig)) : undefined;
  const sudoPassword = ssh.sudoPasswordConfig ? pulumi.secret(secret(ssh.sudoPasswordConfig)) : undefined;
  const target = pulumi.secret(
    pulumi.all([privateKey, sudoPassword, bastionKey]).apply(([key, password, jumpKey]): SshTarget => {
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
        host: machine.address,
        port: ssh.port,
        user: ssh.user,
        privateKey: key,
        hostKey: machine.hostKey,
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
