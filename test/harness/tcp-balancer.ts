/**
 * The external load balancer an HA stack names (`controlPlaneLoadBalancer.type: external`): a TCP proxy on the lab
 * bridge that hands each connection to the first backend, in rotation, that accepts it within a second, as an
 * operator's HAProxy in TCP mode with health checks would. A backend that is down costs a connection attempt, never
 * a failed client connection while another one is up.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface TcpBalancer {
  /** `address:port`: the stack's controlPlaneEndpoint. */
  endpoint: string;
  address: string;
  port: number;
  /** Connections handed to each backend so far, by `host:port`. */
  served: Record<string, number>;
  close(): Promise<void>;
}

const CONNECT_TIMEOUT_MS = 1000;

function connect(host: string, port: number): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const fail = (): void => {
      socket.destroy();
      resolve(undefined);
    };
    socket.setTimeout(CONNECT_TIMEOUT_MS, fail);
    socket.once("error", fail);
    socket.once("connect", () => {
      socket.setTimeout(0);
      socket.removeListener("error", fail);
      resolve(socket);
    });
  });
}

/** Listens on `address` (a free port) and balances over `backends` (`host:port`). */
export function startTcpBalancer(address: string, backends: string[]): Promise<TcpBalancer> {
  const served: Record<string, number> = Object.fromEntries(backends.map((b) => [b, 0]));
  const open = new Set<Socket>();
  let next = 0;
  const server: Server = createServer((client) => {
    open.add(client);
    client.once("close", () => open.delete(client));
    client.on("error", () => client.destroy());
    client.pause();
    void (async () => {
      const start = next++ % backends.length;
      for (let i = 0; i < backends.length && !client.destroyed; i++) {
        const backend = backends[(start + i) % backends.length] as string;
        const [host, port] = [backend.slice(0, backend.lastIndexOf(":")), Number(backend.split(":").pop())];
        const upstream = await connect(host, port);
        if (!upstream) continue;
        if (client.destroyed) {
          // The client gave up while the backend was being reached.
          upstream.destroy();
          return;
        }
        served[backend] = (served[backend] ?? 0) + 1;
        open.add(upstream);
        upstream.once("close", () => open.delete(upstream));
        upstream.on("error", () => client.destroy());
        client.on("close", () => upstream.destroy());
        upstream.on("close", () => client.destroy());
        client.pipe(upstream).pipe(client);
        client.resume();
        return;
      }
      client.destroy();
    })();
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, address, () => {
      const { port } = server.address() as { port: number };
      resolve({
        endpoint: `${address}:${port}`,
        address,
        port,
        served,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of open) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
