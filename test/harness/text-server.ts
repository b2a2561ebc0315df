/** A local HTTP server for download tests: serves the texts of a map by URL path (404 for anything else). */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface TextServer {
  /** `http://127.0.0.1:<port>` (no trailing slash). */
  base: string;
  close(): Promise<void>;
}

/** Serves `texts` (path -> body; read on every request, so a test may change it) on 127.0.0.1. */
export async function serveTexts(texts: Map<string, string>): Promise<TextServer> {
  const server = createServer((req, res) => {
    const body = texts.get(req.url ?? "");
    res.writeHead(body === undefined ? 404 : 200).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
