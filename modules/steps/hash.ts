import { createHash } from "node:crypto";
import type { ManagedFile } from "./types";

/** sha256 over a step's files (path, mode, owner and content): what "these files changed" means. */
export function filesHash(files: readonly ManagedFile[]): string {
  const hash = createHash("sha256");
  for (const file of [...files].sort((a, b) => a.path.localeCompare(b.path))) {
    hash.update(`${file.path}\0${file.mode}\0${file.owner}:${file.group}\0${file.content.length}\0`);
    hash.update(file.content);
  }
  return hash.digest("hex");
}

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
