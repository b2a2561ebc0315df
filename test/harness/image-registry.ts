/**
 * The lab's image registry: the distribution project's own `registry` (built by .ci/install-cluster-components),
 * listening on the lab bridge, where the nodes pull through nodeforge's containerd registry mirrors
 * (`containerd.registryMirrors`), as an air-gapped site's nodes pull from its registry. Images reach it by the
 * OCI distribution API (blob uploads, then the manifest), from OCI image-layout tarballs (oci-image.ts).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { componentDir } from "./kubernetes-build";
import { freePort } from "./ports";
import { execChecked, isAlive, removeTree } from "./rootfs";

export interface ImageRegistry {
  /** `address:port`: what a containerd mirror URL and an image reference name. */
  host: string;
  /** Pushes every image of an OCI image-layout tarball as `<repository>:<tag>`. */
  push(layoutTarball: string, repository: string, tag: string): Promise<void>;
  close(): Promise<void>;
  /** For exit handlers: SIGKILL by PID. */
  killSync(): void;
}

async function waitForRegistry(base: string, child: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`registry exited ${child.exitCode}:\n${log()}`);
    try {
      if ((await fetch(`${base}/v2/`)).status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`registry did not answer ${base}/v2/ within 10 s:\n${log()}`);
}

async function expectStatus(response: Response, status: number, what: string): Promise<Response> {
  if (response.status !== status) {
    throw new Error(`registry: ${what}: HTTP ${response.status} ${await response.text()}`);
  }
  return response;
}

async function pushBlob(base: string, repository: string, digest: string, content: Buffer): Promise<void> {
  if ((await fetch(`${base}/v2/${repository}/blobs/${digest}`, { method: "HEAD" })).status === 200) return;
  const started = await expectStatus(
    await fetch(`${base}/v2/${repository}/blobs/uploads/`, { method: "POST" }),
    202,
    `start upload of ${digest}`,
  );
  const location = new URL(started.headers.get("location") ?? "", base);
  location.searchParams.set("digest", digest);
  await expectStatus(
    await fetch(location, {
      method: "PUT",
      body: content,
      headers: { "content-type": "application/octet-stream", "content-length": String(content.length) },
    }),
    201,
    `upload of ${digest}`,
  );
}

/** Starts the registry on `address` (a free port), its storage and config in `dir`; stopped by its PID. */
export async function startImageRegistry(address: string, dir: string): Promise<ImageRegistry> {
  const binary = join(componentDir("registry"), "registry");
  mkdirSync(join(dir, "storage"), { recursive: true, mode: 0o700 });
  const port = await freePort(address);
  const host = `${address}:${port}`;
  const config = join(dir, "config.yml");
  writeFileSync(
    config,
    [
      "version: 0.1",
      "log: { level: warn }",
      `storage: { filesystem: { rootdirectory: ${JSON.stringify(join(dir, "storage"))} } }`,
      `http: { addr: ${JSON.stringify(host)} }`,
      "",
    ].join("\n"),
  );
  let output = "";
  const child = spawn(binary, ["serve", config], { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  // A binary that cannot start is reported by waitForRegistry (exitCode), not thrown at the event loop.
  child.once("error", (error) => (output += `${error.message}\n`));
  const pid = child.pid ?? 0;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const base = `http://${host}`;
  const killSync = (): void => {
    if (pid && isAlive(pid)) process.kill(pid, "SIGKILL");
  };
  try {
    await waitForRegistry(base, child, () => output);
  } catch (error) {
    killSync();
    throw error;
  }
  return {
    host,
    async push(layoutTarball, repository, tag) {
      const layout = join(dir, `layout-${process.hrtime.bigint()}`);
      mkdirSync(layout);
      try {
        await execChecked("tar", ["-xf", layoutTarball, "-C", layout]);
        const blob = (digest: string): Buffer => readFileSync(join(layout, "blobs", ...digest.split(":")));
        const index = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")) as {
          manifests: { digest: string; mediaType: string }[];
        };
        for (const entry of index.manifests) {
          const manifestBytes = blob(entry.digest);
          const manifest = JSON.parse(manifestBytes.toString()) as {
            config: { digest: string };
            layers: { digest: string }[];
          };
          for (const { digest } of [manifest.config, ...manifest.layers]) {
            await pushBlob(base, repository, digest, blob(digest));
          }
          await expectStatus(
            await fetch(`${base}/v2/${repository}/manifests/${tag}`, {
              method: "PUT",
              body: manifestBytes,
              headers: { "content-type": entry.mediaType },
            }),
            201,
            `manifest of ${repository}:${tag}`,
          );
        }
      } finally {
        await removeTree(layout);
      }
    },
    async close() {
      if (child.exitCode !== null || child.signalCode !== null || !pid) return;
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        return; // Gone in the meantime.
      }
      const timeout = setTimeout(killSync, 5000);
      await exited;
      clearTimeout(timeout);
    },
    killSync,
  };
}
