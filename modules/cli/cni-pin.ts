/**
 * `nodeforge cni-pin FILE`: downloads the stack's CNI manifest (its `cni.manifestUrl`, else the pinned release URL)
 * where that URL is reachable, and prints what an operator needs to trust it: size, sha256, the images it runs, and
 * the `cni.sha256` line to add. A stack that already names a checksum (or whose plugin has a pinned one) is checked
 * against the download instead: a mismatch is an error. The manifest can be saved for review with `--out`.
 *
 * Trust stays with the operator, as with `nodeforge hostkeys`: nodeforge never applies a manifest whose checksum
 * nobody wrote down.
 */
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { cniEdits } from "../cluster-config";
import { DEFAULT_PINS, type Pins } from "../pins";
import { formatIssue, loadStackFile, StackValidationError } from "../stack";

/** Output streams of the command (process.stdout and process.stderr, or test buffers). */
interface Writer {
  write(text: string): unknown;
}

export interface CniPinOptions {
  /** Save the downloaded manifest here (for review). */
  out?: string;
  /** Seconds for the whole download. */
  timeoutSeconds?: number;
  pins?: Pins;
}

/** A manifest is a few hundred KiB (calico's, with its CRDs); anything far larger is not one. */
const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

async function download(url: string, timeoutSeconds: number): Promise<Buffer> {
  const response = await fetch(url, { redirect: "follow", signal: AbortSignal.timeout(timeoutSeconds * 1000) });
  if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`);
  const body = Buffer.from(await response.arrayBuffer());
  if (body.length > MAX_MANIFEST_BYTES) throw new Error(`${body.length} bytes: too large for a manifest`);
  return body;
}

/** The distinct `image:` values of a manifest, in order of appearance. */
export function manifestImages(text: string): string[] {
  const images = [...text.matchAll(/^\s*(?:-\s+)?image:\s*["']?([^"'\s#]+)/gm)].map((m) => m[1] as string);
  return [...new Set(images)];
}

export async function cniPinCommand(file: string, options: CniPinOptions, out: Writer, err: Writer): Promise<number> {
  const pins = options.pins ?? DEFAULT_PINS;
  let stack;
  try {
    stack = loadStackFile(file, pins, { requireHostKeys: false, requireCniChecksum: false });
  } catch (error) {
    if (!(error instanceof StackValidationError)) throw error;
    for (const issue of error.issues) err.write(`${formatIssue(issue)}\n`);
    return 2;
  }
  const { plugin } = stack.cni;
  if (plugin === "none") {
    err.write(`${file}: cni.plugin: is none: there is no manifest to pin\n`);
    return 2;
  }
  const release = pins.cni[plugin];
  const url = stack.cni.manifestUrl ?? release.manifestUrl;
  let body: Buffer;
  try {
    body = await download(url, options.timeoutSeconds ?? 60);
  } catch (error) {
    const cause = (error as Error & { cause?: Error }).cause;
    err.write(
      `${file}: cni: cannot download ${url}: ${(error as Error).message}${cause ? ` (${cause.message})` : ""}\n`,
    );
    return 1;
  }
  const sha256 = createHash("sha256").update(body).digest("hex");
  const text = body.toString("utf8");
  if (options.out) writeFileSync(options.out, body, { mode: 0o644 });

  out.write(`${plugin} ${release.version}: ${url}\n`);
  out.write(`  ${body.length} bytes, sha256 ${sha256}${options.out ? `, saved to ${options.out}` : ""}\n`);
  out.write("  images it runs:\n");
  for (const image of manifestImages(text)) out.write(`    ${image}\n`);

  // The apply script refuses a manifest it cannot adapt; say so now rather than at `pulumi up`.
  const unadaptable = cniEdits(plugin, stack).filter((edit) => text.split(edit.from).length !== 2);
  for (const edit of unadaptable) {
    err.write(
      `${file}: cni: the manifest does not have exactly one ${JSON.stringify(edit.from)}: nodeforge cannot adapt it\n`,
    );
  }
  if (unadaptable.length > 0) return 1;

  const expected = stack.cni.sha256 ?? release.sha256;
  if (expected) {
    if (expected !== sha256) {
      const where = stack.cni.sha256 ? "cni.sha256 in the stack" : `nodeforge's pin for ${plugin} ${release.version}`;
      err.write(`${file}: cni: MISMATCH: ${where} is ${expected}, the download's is ${sha256}\n`);
      return 1;
    }
    out.write(`  matches ${stack.cni.sha256 ? "cni.sha256 in the stack" : "nodeforge's pin"}\n`);
    return 0;
  }
  out.write(`Review the manifest, then add to ${file}:\ncni:\n  plugin: ${plugin}\n  sha256: "${sha256}"\n`);
  return 0;
}
