/** A jump host on the way to a machine: nodeforge logs in here and opens a TCP channel to the machine. */
export interface BastionTarget {
  host: string;
  port: number;
  user: string;
  /** OpenSSH/PEM private key text for the bastion. A Pulumi secret everywhere it travels. */
  privateKey: string;
  /** The bastion's pinned public host key, `<type> <base64>`. Always verified. */
  hostKey: string;
}

/** How nodeforge reaches one machine. Built from a MachineSpec plus the Pulumi config secrets it names. */
export interface SshTarget {
  /** Machine name from the stack file; every error message starts with it. */
  machine: string;
  /** The machine's address: as nodeforge reaches it, or as the bastion reaches it when there is one. */
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
  /** Per connection attempt and per hop: TCP connect plus SSH handshake. */
  connectTimeoutSeconds: number;
  /**
   * Retries after a transient connection failure (refused, reset, timed out, lost before the handshake), with
   * exponential backoff. Authentication and host key failures are never retried. Absent: no retries.
   */
  retries?: number;
  /** Jump host to connect through; absent to connect directly. */
  bastion?: BastionTarget;
}
