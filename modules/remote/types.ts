/** How nodeforge reaches one machine. Built from a MachineSpec plus the Pulumi config secrets it names. */
export interface SshTarget {
  /** Machine name from the stack file; every error message starts with it. */
  machine: string;
  host: string;
  port: number;
  user: string;
  /** OpenSSH/PEM private key text. A Pulumi secret everywhere it travels. */
  privateKey: string;
  /** The pinned public host key, `<type> <base64>` as in known_hosts. Always verified. */
  hostKey: string;
  /** Run privileged commands through sudo. */
  sudo: boolean;
  /** Sudo password (a Pulumi secret), fed on standard input; absent for passwordless sudo. */
  sudoPassword?: string;
  connectTimeoutSeconds: number;
}
