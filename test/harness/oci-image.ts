/**
 * Writes an OCI image as an OCI image-layout tarball (`ctr image import` takes it), by hand: its layer is a tar of
 * `stage` with fixed owners and times (on top of a base layer, when given), then config, manifest, index.json and
 * oci-layout, packed the same way, so the same files give the same bytes.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execChecked, removeTree, sha256Hex } from "./rootfs";

const TAR_FLAGS = ["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0"];

export interface OciImageSpec {
  /** A directory whose entries (`entries`, relative) make the image's one layer. */
  stage: string;
  entries: string[];
  /** The image's name as `ctr image import` records it (io.containerd.image.name). */
  ref: string;
  arch: string;
  /**
   * A layer tar (uncompressed, from writeLayerTar) under the image's own: images with the same base share that
   * layer, so a node pulls it once for all of them.
   */
  baseLayer?: string;
  /** The image config's Entrypoint/Cmd/Env, as in an OCI image config. */
  config: { Entrypoint?: string[]; Cmd?: string[]; Env?: string[] };
}

interface Blob {
  digest: string;
  size: number;
}

function writeBlob(layout: string, content: Buffer): Blob {
  const hex = sha256Hex(content);
  writeFileSync(join(layout, "blobs", "sha256", hex), content);
  return { digest: `sha256:${hex}`, size: content.length };
}

/** Writes the image tarball to `out`; a work directory next to it is removed afterwards. */
/** Writes `entries` of `stage` as a layer tar at `out`, the same bytes for the same files. */
export async function writeLayerTar(stage: string, entries: string[], out: string): Promise<void> {
  await execChecked("tar", [...TAR_FLAGS, "-cf", out, "-C", stage, ...entries]);
}

export async function writeOciImage(spec: OciImageSpec, out: string): Promise<void> {
  const work = mkdtempSync(`${out}.work-`);
  try {
    const layerTar = join(work, "layer.tar");
    await writeLayerTar(spec.stage, spec.entries, layerTar);
    const layout = join(work, "layout");
    mkdirSync(join(layout, "blobs", "sha256"), { recursive: true });
    // Uncompressed layers: a digest is also the diff_id.
    const layers = [...(spec.baseLayer ? [spec.baseLayer] : []), layerTar].map((tar) =>
      writeBlob(layout, readFileSync(tar)),
    );
    const config = writeBlob(
      layout,
      Buffer.from(
        JSON.stringify({
          architecture: spec.arch,
          os: "linux",
          config: spec.config,
          rootfs: { type: "layers", diff_ids: layers.map((layer) => layer.digest) },
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
          layers: layers.map((layer) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer })),
        }),
      ),
    );
    const tag = spec.ref.slice(spec.ref.lastIndexOf(":") + 1);
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
            platform: { architecture: spec.arch, os: "linux" },
            annotations: { "io.containerd.image.name": spec.ref, "org.opencontainers.image.ref.name": tag },
          },
        ],
      }),
    );
    await execChecked("tar", [...TAR_FLAGS, "-cf", out, "-C", layout, "oci-layout", "index.json", "blobs"]);
  } finally {
    await removeTree(work);
  }
}
