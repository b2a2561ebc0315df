/**
 * Debian and Ubuntu: apt. `--force-confold` keeps a configuration file nodeforge wrote before a package that ships
 * one of its own.
 * `dpkg --configure -a` first: an install cut off earlier (a dropped connection) leaves dpkg half-done, and
 * apt refuses to install anything until it is finished.
 */
import type { OsProfile } from "./types";

const apt = {
  family: "debian",
  basePackages: ["ca-certificates", "curl", "tar", "conntrack", "socat", "ethtool", "iptables", "iproute2", "kmod"],
  isInstalledCommand: `dpkg-query -W -f='\${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed`,
  installCommand:
    "export DEBIAN_FRONTEND=noninteractive && dpkg --configure -a && apt-get -q -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold " +
    'install --no-install-recommends "$@"',
  listInstalledCommand: "dpkg-query -W -f='${db:Status-Status} ${Package}\\n' | awk '$1 == \"installed\" { print $2 }'",
  removeCommand: 'export DEBIAN_FRONTEND=noninteractive && apt-get -q -y purge "$@"',
  packageTool: "apt-get",
  refreshCommand: 'DEBIAN_FRONTEND=noninteractive apt-get -q update || nf_fail "apt-get update failed"',
} as const;

function aptProfile(name: OsProfile["name"], id: string, versionId: string): OsProfile {
  return {
    ...apt,
    basePackages: [...apt.basePackages],
    name,
    osRelease: { id, versionId },
  };
}

export const debian12 = aptProfile("debian-12", "debian", "12");
export const ubuntu2204 = aptProfile("ubuntu-22.04", "ubuntu", "22.04");
export const ubuntu2404 = aptProfile("ubuntu-24.04", "ubuntu", "24.04");
