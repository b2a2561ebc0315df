/**
 * What a step's delete script removes besides running its own teardown: the step's files and the directories
 * nodeforge created for them. A delete command runs before its files' RemoteFile resources are deleted (they are
 * its dependencies), so the script removes the files itself and RemoteFile's delete finds nothing left to do.
 */
import { posix } from "node:path";
import type { ManagedFile } from "./types";

/** Directories that belong to the OS: never removed, even when empty. */
const SYSTEM_DIRECTORIES = new Set([
  "/",
  "/etc",
  "/etc/systemd",
  "/etc/systemd/system",
  "/etc/sysctl.d",
  "/etc/modules-load.d",
  "/etc/yum.repos.d",
  "/var",
  "/var/lib",
  "/usr",
  "/usr/local",
  "/usr/local/bin",
]);

export interface OwnedPaths {
  files: string[];
  /** Directories to remove when empty, deepest first. */
  directories: string[];
}

export function ownedPaths(files: readonly ManagedFile[], extraDirectories: readonly string[] = []): OwnedPaths {
  const directories = new Set<string>(extraDirectories);
  for (const file of files) {
    for (let dir = posix.dirname(file.path); !SYSTEM_DIRECTORIES.has(dir); dir = posix.dirname(dir)) {
      directories.add(dir);
    }
  }
  const depth = (path: string) => path.split("/").length;
  return {
    files: files.map((f) => f.path),
    directories: [...directories].sort((a, b) => depth(b) - depth(a) || a.localeCompare(b)),
  };
}
