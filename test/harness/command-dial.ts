/**
 * Test code: dials an SSH connection the way @pulumi/command 1.x does for a remote.Command, from the connection
 * inputs a component registered (host, port, user, privateKey, hostKey, optional proxy with its own). The host key
 * check is the fixed-key check @pulumi/command does when `hostKey` is set (our hostKeyVerification, which also
 * restricts the algorithms to the pinned key's type); through a proxy, the bastion's key is checked the same way
 * and the machine is reached over a `direct-tcpip` channel. One connection per operation, closed afterwards.
 */
import type { Duplex } from "node:stream";
import { NodeSSH } from "node-ssh";
import { hostKeyVerification } from "../../modules/remote/host-key";
import type { RemoteResult } from "../../modules/remote/session";

/** The connection inputs of a remote.Command, resolved. */
export interface CommandConnection {
  host: string;
  port: number;
  user: string;
  privateKey: string;
  hostKey: string;
  perDialTimeout?: number;
  dialErrorLimit?: number;
  proxy?: Omit<CommandConnection, "proxy">;
}

/** An open connection (and the bastion one under it); close() ends both. */
export interface Dialed {
  ssh: NodeSSH;
  close(): void;
}

async function dialOne(
  connection: Omit<CommandConnection, "proxy">,
  label: string,
  endpoint: { host: string; port: number } | { sock: Duplex },
): Promise<NodeSSH> {
  const verification = hostKeyVerification(label, `${connection.host}:${connection.port}`, connection.hostKey);
  const ssh = new NodeSSH();
  try {
    await ssh.connect({
      ...endpoint,
      username: connection.user,
      privateKey: connection.privateKey,
      readyTimeout: (connection.perDialTimeout ?? 15) * 1000,
      ...verification.options,
    });
  } catch (error) {
    ssh.dispose();
    throw verification.mismatch() ?? error;
  }
  return ssh;
}

/** Dials like @pulumi/command: proxy first when there is one. Rejects with HostKeyMismatchError on a wrong key. */
export async function dialLikePulumiCommand(connection: CommandConnection, label = "remote.Command"): Promise<Dialed> {
  if (!connection.proxy) {
    const ssh = await dialOne(connection, label, { host: connection.host, port: connection.port });
    return { ssh, close: () => ssh.dispose() };
  }
  const proxy = connection.proxy;
  const bastion = await dialOne(proxy, `${label} proxy`, { host: proxy.host, port: proxy.port });
  try {
    const sock = await bastion.forwardOut("127.0.0.1", 0, connection.host, connection.port);
    const ssh = await dialOne(connection, label, { sock: sock as unknown as Duplex });
    return {
      ssh,
      close: () => {
        ssh.dispose();
        bastion.dispose();
      },
    };
  } catch (error) {
    bastion.dispose();
    throw error;
  }
}

/** One remote.Command operation: dial, run `line` with the whole `stdin` written then closed, hang up. */
export async function runLikePulumiCommand(
  connection: CommandConnection,
  line: string,
  stdin?: string,
): Promise<RemoteResult> {
  const dialed = await dialLikePulumiCommand(connection);
  try {
    const result = await dialed.ssh.execCommand(line, { ...(stdin === undefined ? {} : { stdin }), noTrim: true });
    return { code: result.code ?? -1, stdout: result.stdout, stderr: result.stderr };
  } finally {
    dialed.close();
  }
}
