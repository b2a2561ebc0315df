import { connect } from "node:net";

/** The first line an SSH server sends on host:port (`SSH-2.0-...`), or "" when nothing answers within 1 s. */
export function readSshBanner(host: string, port = 22): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let text = "";
    socket.setTimeout(1000, () => socket.destroy());
    socket.on("data", (chunk) => {
      text += chunk.toString("latin1");
      if (text.includes("\n")) socket.destroy();
    });
    socket.on("error", () => undefined);
    socket.on("close", () => resolve(text));
  });
}
