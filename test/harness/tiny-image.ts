/**
 * A tiny OCI image (one layer: a static busybox) as an OCI image-layout tarball that `ctr image import` takes,
 * so a test can run a real container inside a machine without any registry.
 *
 * busybox comes from Debian's busybox-static package, downloaded on the host (the machines have no internet) with
 * the apt mirror's private apt state, for the rootfs's suite and arch; oci-image.ts writes the layout. Cached under
 * CACHE_ROOT/image/.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { downloadPackages } from "./apt-mirror";
import { writeOciImage } from "./oci-image";
import { buildCached, CACHE_ROOT, execChecked, removeTree, type Rootfs } from "./rootfs";

/** The name `ctr image import` gives the image (from the io.containerd.image.name annotation). */
export const TINY_IMAGE_REF = "docker.io/nodeforge/tiny:test";

export interface TinyImage {
  /** The OCI image-layout tarball on the host. */
  path: string;
  ref: string;
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
  const config = { Env: ["PATH=/bin"], Cmd: ["/bin/sh"] };
  await writeOciImage({ stage, entries: ["bin"], ref: TINY_IMAGE_REF, arch, config }, join(temp, "image.tar"));
  await removeTree(work);
}

/** Debian's static busybox for the rootfs's suite and arch, cached under CACHE_ROOT/image/. */
export async function ensureBusybox(rootfs: Rootfs): Promise<string> {
  const dir = join(CACHE_ROOT, "image", `busybox-${rootfs.params.suite}-${rootfs.params.arch}`);
  await buildCached(dir, async (temp) => {
    mkdirSync(temp);
    const work = mkdtempSync(join(temp, "work-"));
    copyFileSync(await fetchBusybox(rootfs, work), join(temp, "busybox"));
    await removeTree(work);
  });
  return join(dir, "busybox");
}

/** Returns the cached image tarball, building it first when it is missing. */
export async function ensureTinyImage(rootfs: Rootfs): Promise<TinyImage> {
  const dir = join(CACHE_ROOT, "image", `tiny-${rootfs.params.suite}-${rootfs.params.arch}`);
  await buildCached(dir, (temp) => buildImage(rootfs, temp));
  const path = join(dir, "image.tar");
  if (!statSync(path).isFile()) throw new Error(`tiny-image: ${path} is missing`);
  return { path, ref: TINY_IMAGE_REF };
}
