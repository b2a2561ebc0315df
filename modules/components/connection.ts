/** Turns a machine's SSH settings plus its secrets into the connection inputs both resource kinds take. */
import * as pulumi from "@pulumi/pulumi";
import type { remote } from "@pulumi/command/types/input";
import { sudoPasswordLine } from "../remote/command-line";
import type { BastionTarget, SshTarget } from "../remote/types";
import type { MachineSpec } from "../stack/types";

/** Looks up a Pulumi config secret by key name (index.ts passes `config.requireSecret`). */
export type SecretLookup = (configKey: string) => pulumi.Output<string>;

export interface MachineAccess {
  /** For RemoteFile and UnitState (node-ssh). The whole object is a secret: it carries the private keys. */
  target: pulumi.Output<SshTarget>;
  /** For remote.Command: host key pinned, bastion as `proxy` (its host key pinned too), retries and timeout. */
  connection: remote.ConnectionArgs;
  /** The sudo password line for remote.Command's stdin, when sudo needs one (see remote/command-line.ts). */
  sudoStdin?: pulumi.Output<string>;
}

/** What reaching a machine needs: a Kubernetes node's MachineSpec, or an external etcd member's EtcdMachineSpec. */
export type ReachableMachine = Pick<MachineSpec, "name" | "address" | "hostKey" | "ssh">;

function passwordLine(machine: ReachableMachine, password: string): string {
  try {
    return sudoPasswordLine(password);
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
        ...(password === undefined ? {} : { sudoPassword: password }),
        connectTimeoutSeconds: ssh.connectTimeoutSeconds,
        retries: ssh.retries,
        ...(via ? { bastion: via } : {}),
      };
    }),
  );
  // @pulumi/command dials up to dialErrorLimit + 1 times, perDialTimeout seconds each: the stack's retries and
  // timeout, the same budget RemoteFile's session pool gets.
  const dialing = { perDialTimeout: ssh.connectTimeoutSeconds, dialErrorLimit: ssh.retries };
  const connection: remote.ConnectionArgs = {
    host: machine.address,
    port: ssh.port,
    user: ssh.user,
    privateKey,
    // Without hostKey @pulumi/command accepts any host key: never leave it out (nor the bastion's).
    hostKey: machine.hostKey,
    ...dialing,
    ...(bastion && bastionKey
      ? {
          proxy: {
            host: bastion.address,
            port: bastion.port,
            user: bastion.user,
            privateKey: bastionKey,
            hostKey: bastion.hostKey,
            ...dialing,
          },
        }
      : {}),
  };
  return {
    target,
    connection,
    ...(sudoPassword ? { sudoStdin: pulumi.secret(sudoPassword.apply((p) => passwordLine(machine, p))) } : {}),
  };
}
