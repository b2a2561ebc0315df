/** Rocky Linux: dnf. containerd and runc come from their upstream releases, as on every OS. */
import type { OsProfile } from "./types";

export const rocky9: OsProfile = {
  name: "rocky-9",
  family: "rhel",
  // VERSION_ID carries the minor release (9.4), so only the major version is compared.
  osRelease: { id: "rocky", versionId: "9", majorOnly: true },
  basePackages: [
    "ca-certificates",
    "curl",
    "tar",
    "conntrack-tools",
    "socat",
    "ethtool",
    "iptables-nft",
    "iproute-tc",
    "kmod",
    // SELinux policy for container runtimes (the container types pods run as, the labels of containerd's state),
    // which the containerd.io package used to pull in.
    "container-selinux",
  ],
  isInstalledCommand: 'rpm -q "$1" >/dev/null 2>&1',
  listInstalledCommand: "rpm -qa --qf '%{NAME}\\n'",
  installCommand: 'dnf -q -y install "$@"',
  removeCommand: 'dnf -q -y remove "$@"',
  packageTool: "dnf",
  refreshCommand: ": # dnf refreshes its metadata itself",
};
