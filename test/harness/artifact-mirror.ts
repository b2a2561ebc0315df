/**
 * A local artifact mirror laid out like the upstream release trees nodeforge downloads from:
 *
 *   <base>/release/v<version>/bin/linux/<arch>/{kubelet,kubeadm,kubectl}
 *   <base>/cri-tools/v<v>/crictl-v<v>-linux-<arch>.tar.gz
 *   <base>/cni-plugins/v<v>/cni-plugins-linux-<arch>-v<v>.tgz
 *   <base>/etcd/v<v>/etcd-v<v>-linux-<arch>.tar.gz
 *   <base>/containerd/v<v>/containerd-<v>-linux-<arch>.tar.gz
 *   <base>/runc/v<v>/runc.<arch>
 *   <base>/cni/<plugin>/<version>/{kube-flannel.yml,calico.yaml}   (see cni-doubles.ts)
 *
 * The real release files cannot be downloaded here. Where .ci/install-kubernetes built a binary from the
 * Kubernetes Go module (the kubelet of KUBERNETES_BUILD_VERSION), that real binary is served, and the CNI plugins
 * tarball .ci/install-cni-plugins built from containernetworking/plugins, and the etcd, containerd, runc and crictl
 * releases .ci/install-cluster-components built; everything else (other versions and arches) is a TEST DOUBLE: shell
 * scripts that say what they are, and tarballs holding them in the release's layout. The served files'
 * sha256 make a `Pins` object, so the real download, checksum and install code runs against them. The server can serve wrong bytes for one path on purpose
 * (checksum-failure tests). Also the static file server the apt mirror uses.
 */
import { createReadStream, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { basename, dirname, join, normalize, sep } from "node:path";
import { gzipSync } from "node:zlib";
import { ARCHES, type Arch } from "../../modules/stack/types";
import { CNI_PLUGINS, DEFAULT_PINS, type CniPlugin, type KubeBinary, type Pins } from "../../modules/pins";
import { cniManifestDouble, cniManifestPath } from "./cni-doubles";
import {
  builtBinary,
  builtCniPlugins,
  builtContainerdRelease,
  builtCrictl,
  builtEtcdRelease,
  builtFlannel,
  builtRunc,
} from "./kubernetes-build";
import { execChecked, removeTree, sha256Hex } from "./rootfs";

export interface StaticServer {
  /** `http://<address>:<port>` (no trailing slash). */
  url: string;
  port: number;
  /** `<status> <method> <path>` of every request so far, in order. */
  requests: string[];
  /** Serves `content` instead of the file at `urlPath` until the returned function is called. */
  override(urlPath: string, content: Buffer): () => void;
  close(): Promise<void>;
}

/** Serves the files below `root` read-only (GET and HEAD), bound to `address` on a free port. */
export function serveDirectory(root: string, address: string): Promise<StaticServer> {
  const overrides = new Map<string, Buffer>();
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const method = req.method ?? "GET";
    const urlPath = decodeURIComponent(new URL(req.url ?? "/", "http://mirror").pathname);
    const reply = (status: number, headers: Record<string, string | number> = {}): void => {
      requests.push(`${status} ${method} ${urlPath}`);
      res.writeHead(status, headers);
    };
    if (method !== "GET" && method !== "HEAD") {
      reply(405);
      res.end();
      return;
    }
    const override = overrides.get(urlPath);
    if (override) {
      reply(200, { "content-length": override.length, "content-type": "application/octet-stream" });
      res.end(method === "HEAD" ? undefined : override);
      return;
    }
    const file = normalize(join(root, urlPath));
    let size = -1;
    try {
      const stat = statSync(file);
      if (stat.isFile() && (file + sep).startsWith(root + sep)) size = stat.size;
    } catch {
      // Missing: 404 below.
    }
    if (size < 0) {
      reply(404);
      res.end();
      return;
    }
    reply(200, { "content-length": size, "content-type": "application/octet-stream" });
    if (method === "HEAD") res.end();
    else createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, address, () => {
      const { port } = server.address() as { port: number };
      resolve({
        url: `http://${address}:${port}`,
        port,
        requests,
        override(urlPath, content) {
          overrides.set(urlPath, content);
          return () => overrides.delete(urlPath);
        },
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

export function kubeBinaryPath(version: string, arch: Arch, binary: KubeBinary): string {
  return `/release/v${version}/bin/linux/${arch}/${binary}`;
}

export function crictlPath(version: string, arch: Arch): string {
  return `/cri-tools/v${version}/crictl-v${version}-linux-${arch}.tar.gz`;
}

function doubleScript(name: string, version: string, arch: Arch): string {
  // The version and arch are in the text, so every pinned file has its own checksum, as real releases do.
  return [
    "#!/bin/sh",
    `# nodeforge test double (not the real ${name}): v${version} linux/${arch}`,
    `echo "nodeforge test double: ${name} $*"`,
    "",
  ].join("\n");
}

export function etcdReleasePath(version: string, arch: Arch): string {
  return `/etcd/v${version}/etcd-v${version}-linux-${arch}.tar.gz`;
}

export function containerdPath(version: string, arch: Arch): string {
  return `/containerd/v${version}/containerd-${version}-linux-${arch}.tar.gz`;
}

export function runcPath(version: string, arch: Arch): string {
  return `/runc/v${version}/runc.${arch}`;
}

/** The programs of containerd's release tarball, as its doubles. */
const CONTAINERD_DOUBLES = ["bin/containerd", "bin/containerd-shim-runc-v2", "bin/ctr"];

export function cniPluginsPath(version: string, arch: Arch): string {
  return `/cni-plugins/v${version}/cni-plugins-linux-${arch}-v${version}.tgz`;
}

/** The reference plugins a node needs (the doubles' tarball holds these; a real one holds them all). */
const CNI_PLUGIN_DOUBLES = ["bridge", "host-local", "loopback", "portmap"];

/** A deterministic tar.gz of executable doubles at the paths `names`, as the release tarball lays them out. */
async function doublesTarball(names: string[], version: string, arch: Arch): Promise<Buffer> {
  const stage = mkdtempSync(join(tmpdir(), "nodeforge-tarball-"));
  try {
    for (const name of names) {
      mkdirSync(dirname(join(stage, name)), { recursive: true });
      writeFileSync(join(stage, name), doubleScript(basename(name), version, arch), { mode: 0o755 });
    }
    const tar = join(stage, "doubles.tar");
    await execChecked("tar", [
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      "--mtime=@0",
      "-cf",
      tar,
      "-C",
      stage,
      ...names,
    ]);
    // zlib writes no file name or time into the gzip header: same bytes every run.
    return gzipSync(readFileSync(tar));
  } finally {
    await removeTree(stage);
  }
}

/**
 * flannel's release manifest as the lab serves it, with one change: the CNI configuration's spec version 1.0.0
 * becomes 0.4.0. flannel's own CNI plugin module (github.com/flannel-io/cni-plugin) is not served here, and the
 * plugin the lab builds instead (containernetworking/plugins v0.9.1's plugins/meta/flannel, where it lived before
 * that repository split off) speaks the CNI spec up to 0.4.0; the reference plugins it chains speak both.
 */
export function labFlannelManifest(manifest: string): string {
  const from = '"cniVersion": "1.0.0",';
  if (manifest.split(from).length !== 2) throw new Error(`flannel manifest: expected ${from} exactly once`);
  return manifest.replace(from, '"cniVersion": "0.4.0",');
}

export interface ArtifactMirror {
  /** Base URL of the Kubernetes release tree (`artifacts.kubernetesBaseUrl`). */
  kubernetesBaseUrl: string;
  /** Base URL of the cri-tools releases (`artifacts.crictlBaseUrl`). */
  crictlBaseUrl: string;
  /** Base URL of the CNI plugins releases (`artifacts.cniPluginsBaseUrl`). */
  cniPluginsBaseUrl: string;
  /** Base URL of the etcd releases (`artifacts.etcdBaseUrl`). */
  etcdBaseUrl: string;
  /** Base URL of the containerd releases (`artifacts.containerdBaseUrl`). */
  containerdBaseUrl: string;
  /** Base URL of the runc releases (`artifacts.runcBaseUrl`). */
  runcBaseUrl: string;
  /** DEFAULT_PINS with every checksum replaced by the test double's. */
  pins: Pins;
  /** The CNI manifest doubles of the pinned versions: a stack's `cni.manifestUrl` and `cni.sha256`. */
  cni: Record<CniPlugin, { manifestUrl: string; sha256: string }>;
  /**
   * flannel's release manifest (from the flannel module .ci/install-cluster-components built; see
   * labFlannelManifest), when that build exists: a stack's `cni.manifestUrl` and `cni.sha256` for the real plugin.
   */
  flannel?: { version: string; manifestUrl: string; sha256: string };
  /** sha256 of each served file, by URL path. */
  sha256: Record<string, string>;
  server: StaticServer;
  /**
   * Serves different bytes (a tampered double) for one path until the returned function is called; the pinned
   * checksum stays the good one, so a download of that path must fail verification.
   */
  serveWrongFile(urlPath: string): () => void;
  close(): Promise<void>;
}

/**
 * Writes the test doubles for every pinned version and arch into `root` (the `servedBuilds` that
 * .ci/install-kubernetes built are served instead of their doubles) (default: a new temp directory; machines.ts
 * puts it in its run directory, which a later run sweeps if this one is killed) and serves them on `address`.
 */
export async function startArtifactMirror(
  address: string,
  root?: string,
  servedBuilds: readonly KubeBinary[] = ["kubelet"],
): Promise<ArtifactMirror> {
  if (root) mkdirSync(root, { recursive: true });
  else root = mkdtempSync(join(tmpdir(), "nodeforge-artifacts-"));
  try {
    const sha256: Record<string, string> = {};
    const write = (urlPath: string, content: string | Buffer): string => {
      const file = join(root, urlPath);
      mkdirSync(join(file, ".."), { recursive: true });
      writeFileSync(file, content, { mode: 0o644 });
      sha256[urlPath] = sha256Hex(content);
      return sha256[urlPath];
    };
    const pins: Pins = structuredClone(DEFAULT_PINS);
    for (const [version, release] of Object.entries(pins.kubernetes)) {
      for (const arch of ARCHES) {
        for (const binary of Object.keys(release.binaries[arch]) as KubeBinary[]) {
          // The real binary where .ci/install-kubernetes built it from the Kubernetes module, else a double.
          const built = servedBuilds.includes(binary) ? builtBinary(version, arch, binary) : undefined;
          release.binaries[arch][binary] = write(
            kubeBinaryPath(version, arch, binary),
            built ? readFileSync(built) : doubleScript(binary, version, arch),
          );
        }
      }
    }
    for (const [version, byArch] of Object.entries(pins.crictl)) {
      for (const arch of ARCHES) {
        const built = builtCrictl(version, arch);
        byArch[arch] = write(
          crictlPath(version, arch),
          built ? readFileSync(built) : await doublesTarball(["crictl"], version, arch),
        );
      }
    }
    for (const [version, byArch] of Object.entries(pins.containerd)) {
      for (const arch of ARCHES) {
        const built = builtContainerdRelease(version, arch);
        byArch[arch] = write(
          containerdPath(version, arch),
          built ? readFileSync(built) : await doublesTarball(CONTAINERD_DOUBLES, version, arch),
        );
      }
    }
    for (const arch of ARCHES) {
      const { version } = pins.runc;
      const built = builtRunc(version, arch);
      pins.runc.sha256[arch] = write(
        runcPath(version, arch),
        built ? readFileSync(built) : doubleScript("runc", version, arch),
      );
    }
    for (const [version, byArch] of Object.entries(pins.cniPlugins)) {
      for (const arch of ARCHES) {
        const built = builtCniPlugins(version, arch);
        byArch[arch] = write(
          cniPluginsPath(version, arch),
          built ? readFileSync(built) : await doublesTarball(CNI_PLUGIN_DOUBLES, version, arch),
        );
      }
    }
    const cniPaths = Object.fromEntries(
      CNI_PLUGINS.map((plugin) => {
        const release = pins.cni[plugin];
        const urlPath = cniManifestPath(plugin, release.version);
        release.sha256 = write(urlPath, cniManifestDouble(plugin, release.version));
        return [plugin, urlPath];
      }),
    ) as Record<CniPlugin, string>;
    for (const arch of ARCHES) {
      const { version } = pins.etcd;
      const built = builtEtcdRelease(version, arch);
      const programs = ["etcd", "etcdctl", "etcdutl"].map((p) => `etcd-v${version}-linux-${arch}/${p}`);
      pins.etcd.sha256[arch] = write(
        etcdReleasePath(version, arch),
        built ? readFileSync(built) : await doublesTarball(programs, version, arch),
      );
    }
    const flannelBuild = builtFlannel();
    const flannelPath = flannelBuild && `/cni-build/flannel/${flannelBuild.version}/kube-flannel.yml`;
    if (flannelBuild && flannelPath)
      write(flannelPath, labFlannelManifest(readFileSync(flannelBuild.manifest, "utf8")));
    const server = await serveDirectory(root, address);
    return {
      kubernetesBaseUrl: `${server.url}/release`,
      crictlBaseUrl: `${server.url}/cri-tools`,
      cniPluginsBaseUrl: `${server.url}/cni-plugins`,
      etcdBaseUrl: `${server.url}/etcd`,
      containerdBaseUrl: `${server.url}/containerd`,
      runcBaseUrl: `${server.url}/runc`,
      pins,
      cni: Object.fromEntries(
        CNI_PLUGINS.map((plugin) => [
          plugin,
          { manifestUrl: `${server.url}${cniPaths[plugin]}`, sha256: pins.cni[plugin].sha256 as string },
        ]),
      ) as Record<CniPlugin, { manifestUrl: string; sha256: string }>,
      ...(flannelBuild && flannelPath
        ? {
            flannel: {
              version: flannelBuild.version,
              manifestUrl: `${server.url}${flannelPath}`,
              sha256: sha256[flannelPath] as string,
            },
          }
        : {}),
      sha256,
      server,
      serveWrongFile(urlPath) {
        const good = readFileSync(join(root, urlPath));
        return server.override(
          urlPath,
          Buffer.concat([good, Buffer.from("# tampered by the nodeforge test harness\n")]),
        );
      },
      async close() {
        await server.close();
        await removeTree(root);
      },
    };
  } catch (error) {
    await removeTree(root);
    throw error;
  }
}
