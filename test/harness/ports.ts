/** Ports for the harness's own servers (sshd, the image registry) and for connections that must be refused. */
import { createServer } from "node:net";

/** A TCP port on `address` that nothing listens on right now (the kernel's pick, released again). */
export function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, address, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
