/**
 * A tiny OCI image (one layer: a static busybox) as an OCI image-layout tarball that `ctr image import` takes,
 * so a test can run a real container inside a machine without any registry.
 *
 * busybox comes from Debian's busybox-static package, downloaded on the host (the machines have no internet) with
 * the apt mirror's private apt state, for the rootfs's suite and arch. The layout (oci-layout, index.json,
 * blobs/sha256/...) is written by hand and packed by tar with fixed owners and times. Cached under CACHE_ROOT/image/.
 */
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { downloadPackages } from "./apt-mirror";
import { buildCached, CACHE_ROOT, execChecked, removeTree, sha256Hex, type Rootfs } from "./rootfs";

/** The name `ctr image import` gives the image (from the io.containerd.image.name annotation). */
export const TINY_IMAGE_REF = "docker.io/nodeforge/tiny:test";

export interface TinyImage {
  /** The OCI image-layout tarball on the host. */
  path: string;
  ref: string;
}

const TAR_FLAGS = ["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0"];

interface Blob {
  digest: string;
  size: number;
}

function writeBlob(layout: string, content: Buffer): Blob {
  const hex = sha256Hex(content);
  writeFileSync(join(layout, "blobs", "sha256", hex), content);
  return { digest: `sha256:${hex}`, size: content.length };
}

/** Extracts /bin/busybox from Debian's busybox-static .deb into `dir`. */
async function fetchBusybox(rootfs: Rootfs, dir: string): Promise<string> {
  const download = join(dir, "deb");
  mkdirSync(download);
  await downloadPackages(rootfs, ["busybox-static"], download);
  const deb = readdirSync(download).find((name) => name.endsWith(".deb"));
  if (!deb) throw new Error("tiny-image: apt-get download busybox-static produced no .deb");
  await execChecked("dpkg-deb", ["-x", join(download, deb), join(dir, "unpacked")]);
  return join(dir, "unpacked", "bin", "busybox");
}

async function buildImage(rootfs: Rootfs, temp: string): Promise<void> {
  const arch = rootfs.params.arch;
  mkdirSync(temp);
  const work = mkdtempSync(join(temp, "work-"));
  const busybox = await fetchBusybox(rootfs, work);

  const stage = join(work, "rootfs");
  mkdirSync(join(stage, "bin"), { recursive: true });
  copyFileSync(busybox, join(stage, "bin", "busybox"));
  symlinkSync("busybox", join(stage, "bin", "sh"));
  const layerTar = join(work, "layer.tar");
  await execChecked("tar", [...TAR_FLAGS, "-cf", layerTar, "-C", stage, "bin"]);

  const layout = join(work, "layout");
  mkdirSync(join(layout, "blobs", "sha256"), { recursive: true });
  // Uncompressed layer: its digest is also its diff_id.
  const layer = writeBlob(layout, readFileSync(layerTar));
  const config = writeBlob(
    layout,
    Buffer.from(
      JSON.stringify({
        architecture: arch,
        os: "linux",
        config: { Env: ["PATH=/bin"], Cmd: ["/bin/sh"] },
        rootfs: { type: "layers", diff_ids: [layer.digest] },
      }),
    ),
  );
  const manifest = writeBlob(
    layout,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer }],
      }),
    ),
  );
  writeFileSync(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(layout, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          ...manifest,
          platform: { architecture: arch, os: "linux" },
          annotations: { "io.containerd.image.name": TINY_IMAGE_REF, "org.opencontainers.image.ref.name": "test" },
        },
      ],
    }),
  );
  await execChecked("tar", [
    ...TAR_FLAGS,
    "-cf",
    join(temp, "image.tar"),
    "-C",
    layout,
    "oci-layout",
    "index.json",
    "blobs",
  ]);
  await removeTree(work);
}

/** Returns the cached image tarball, building it first when it is missing. */
export async function ensureTinyImage(rootfs: Rootfs): Promise<TinyImage> {
  const dir = join(CACHE_ROOT, "image", `tiny-${rootfs.params.suite}-${rootfs.params.arch}`);
  await buildCached(dir, (temp) => buildImage(rootfs, temp));
  const path = join(dir, "image.tar");
  if (!statSync(path).isFile()) throw new Error(`tiny-image: ${path} is missing`);
  return { path, ref: TINY_IMAGE_REF };
}
