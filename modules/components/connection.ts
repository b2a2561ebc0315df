/** Turns a machine's SSH settings plus its secrets into the connection inputs both resource kinds take. */
import * as pulumi from "@pulumi/pulumi";
import type { remote } from "@pulumi/command/types/input";
import type { SshTarget } from "../remote/types";
import type { MachineSpec } from "../stack/types";

/** Looks up a Pulumi config secret by key name (index.ts passes `config.requireSecret`). */
export type SecretLookup = (configKey: string) => pulumi.Output<string>;

export interface MachineAccess {
  /** For RemoteFile (node-ssh). The whole object is a secret: it carries the private key. */
  target: pulumi.Output<SshTarget>;
  /** For remote.Command. */
  connection: remote.ConnectionArgs;
  /** The sudo password line for remote.Command's stdin, when sudo needs one. */
  sudoStdin?: pulumi.Output<string>;
}

export function machineAccess(machine: MachineSpec, secret: SecretLookup): MachineAccess {
  const { ssh } = machine;
  const privateKey = pulumi.secret(secret(ssh.privateKeyConfig));
  const sudoPassword = ssh.sudoPasswordConfig ? pulumi.secret(secret(ssh.sudoPasswordConfig)) : undefined;
  const target = pulumi.secret(
    pulumi.all([privateKey, sudoPassword]).apply(([key, password]): SshTarget => ({
      machine: machine.name,
      host: machine.address,
      port: ssh.port,
      user: ssh.user,
      privateKey: key,
      hostKey: machine.hostKey,
      sudo: ssh.sudo,
      ...(password === undefined ? {} : { sudoPassword: password }),
      connectTimeoutSeconds: ssh.connectTimeoutSeconds,
    })),
  );
  return {
    target,
    connection: {
      host: machine.address,
      port: ssh.port,
      user: ssh.user,
      privateKey,
      // Without hostKey @pulumi/command accepts any host key: never leave it out.
      hostKey: machine.hostKey,
      perDialTimeout: ssh.connectTimeoutSeconds,
      dialErrorLimit: 3,
    },
    ...(sudoPassword ? { sudoStdin: pulumi.secret(sudoPassword.apply((p) => `${p}\n`)) } : {}),
  };
}
