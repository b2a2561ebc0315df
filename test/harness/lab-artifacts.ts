/**
 * The lab serves real Kubernetes binaries where it can: it downloads the lab version's kubelet, kubeadm,
 * kubectl, crictl, CNI plugins, containerd and runc once (on the host, which has the internet access the machines lack), verifies them
 * against nodeforge's pinned checksums, caches them, and has the artifact mirror serve them instead of its own
 * files. Without internet access the mirror keeps serving its own: what .ci/install-toolchain built, test
 * doubles for the rest; the lab's stack file then names their checksums (`artifacts.sha256`), as an operator's
 * would for builds of their own, until real files are placed in the cache (the air-gapped path).
 */
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { dirname, join } from "node:path";
import {
  DEFAULT_PINS,
  DEFAULT_CNI_PLUGINS_BASE_URL,
  DEFAULT_CONTAINERD_BASE_URL,
  DEFAULT_CRICTL_BASE_URL,
  DEFAULT_KUBERNETES_BASE_URL,
  DEFAULT_RUNC_BASE_URL,
  type KubeBinary,
} from "../../modules/pins";
import type { Arch, BinaryChecksums } from "../../modules/stack/types";
import {
  cniPluginsPath,
  containerdPath,
  crictlPath,
  kubeBinaryPath,
  runcPath,
  type ArtifactMirror,
} from "./artifact-mirror";
import { execProgram, sha256Hex } from "./rootfs";

export const LAB_ARTIFACT_CACHE = "/var/cache/nodeforge-lab/artifacts";

interface Wanted {
  binary: keyof BinaryChecksums;
  urlPath: string;
  upstream: string;
  sha256: string;
}

function wanted(version: string, arch: Arch): Wanted[] {
  const release = DEFAULT_PINS.kubernetes[version];
  if (!release) throw new Error(`lab: no pins for Kubernetes ${version}`);
  const binaries = (["kubelet", "kubeadm", "kubectl"] as KubeBinary[]).map((binary) => ({
    binary,
    urlPath: kubeBinaryPath(version, arch, binary),
    upstream: `${DEFAULT_KUBERNETES_BASE_URL}/v${version}/bin/linux/${arch}/${binary}`,
    sha256: release.binaries[arch][binary],
  }));
  const crictl = release.crictlVersion;
  const cni = release.cniPluginsVersion;
  const containerd = release.containerdVersion;
  const runc = DEFAULT_PINS.runc.version;
  return [
    ...binaries,
    {
      binary: "crictl" as const,
      urlPath: crictlPath(crictl, arch),
      upstream: `${DEFAULT_CRICTL_BASE_URL}/v${crictl}/crictl-v${crictl}-linux-${arch}.tar.gz`,
      sha256: DEFAULT_PINS.crictl[crictl]?.[arch] ?? "",
    },
    {
      binary: "cniPlugins" as const,
      urlPath: cniPluginsPath(cni, arch),
      upstream: `${DEFAULT_CNI_PLUGINS_BASE_URL}/v${cni}/cni-plugins-linux-${arch}-v${cni}.tgz`,
      sha256: DEFAULT_PINS.cniPlugins[cni]?.[arch] ?? "",
    },
    {
      binary: "containerd" as const,
      urlPath: containerdPath(containerd, arch),
      upstream: `${DEFAULT_CONTAINERD_BASE_URL}/v${containerd}/containerd-${containerd}-linux-${arch}.tar.gz`,
      sha256: DEFAULT_PINS.containerd[containerd]?.[arch] ?? "",
    },
    {
      binary: "runc" as const,
      urlPath: runcPath(runc, arch),
      upstream: `${DEFAULT_RUNC_BASE_URL}/v${runc}/runc.${arch}`,
      sha256: DEFAULT_PINS.runc.sha256[arch],
    },
  ];
}

/**
 * Serves verified real binaries for `version`/`arch`. Returns the upstream URLs it could not get, and the
 * checksums of what the mirror now serves (the pinned ones where real, the doubles' elsewhere).
 */
export async function serveRealArtifacts(
  mirror: ArtifactMirror,
  version: string,
  arch: Arch,
  log: (line: string) => void,
): Promise<{ missing: string[]; served: BinaryChecksums }> {
  const missing: string[] = [];
  const served = {} as BinaryChecksums;
  for (const item of wanted(version, arch)) {
    served[item.binary] = mirror.sha256[item.urlPath] ?? "";
    const cached = join(LAB_ARTIFACT_CACHE, item.urlPath);
    if (!existsSync(cached)) {
      mkdirSync(dirname(cached), { recursive: true });
      const partial = `${cached}.download`;
      const result = await execProgram("curl", ["-fsSL", "--connect-timeout", "10", "-o", partial, item.upstream], {
        timeoutMs: 600_000,
      });
      if (result.code !== 0) {
        log(
          `lab: cannot download ${item.upstream} (curl exit ${result.code}); serving the lab's own build or a test double`,
        );
        missing.push(item.upstream);
        continue;
      }
      renameSync(partial, cached);
    }
    const content = readFileSync(cached);
    if (sha256Hex(content) !== item.sha256) {
      log(`lab: ${cached} does not match its pinned sha256; serving the lab's own build or a test double`);
      missing.push(item.upstream);
      continue;
    }
    mirror.server.override(item.urlPath, content);
    served[item.binary] = item.sha256;
  }
  return { missing, served };
}
