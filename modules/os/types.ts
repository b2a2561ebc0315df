/** What differs between operating system families, so that steps and templates need not branch on names. */
import type { OsName } from "../stack";

export interface OsProfile {
  name: OsName;
  family: "debian" | "rhel";
  /** Values /etc/os-release must carry for this stack-file `os`. */
  osRelease: { id: string; versionId: string; majorOnly?: boolean };
  /** Packages every node needs besides the container runtime (kubeadm preflight, kube-proxy, downloads). */
  basePackages: string[];
  /** Shell snippet: succeeds when package "$1" is installed. */
  isInstalledCommand: string;
  /** Shell snippet: prints the names of all installed packages, one a line. */
  listInstalledCommand: string;
  /** Shell snippet: installs the packages given as arguments ("$@"), non-interactively, keeping our config files. */
  installCommand: string;
  /** Shell snippet: removes the packages given as arguments ("$@"). */
  removeCommand: string;
  /** The package tool's name, for messages. */
  packageTool: string;
  /** Shell snippet: refreshes the package metadata before an install (a no-op where the tool does it itself). */
  refreshCommand: string;
}
