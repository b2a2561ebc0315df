/**
 * A local flat apt repository with the packages nodeforge's install-containerd step installs on debian-12 and
 * Debian's own containerd and runc (see MIRROR_PACKAGES), plus
 * every dependency (and recommended package) the test rootfs does not already have. The machines have no
 * internet; their sources.list names only this repository, served over HTTP from the host side of the bridge.
 *
 * Dependencies are resolved by the host's apt against the rootfs's dpkg status file, in a private apt state
 * directory (its own sources.list, lists, cache and keyring: the host's configuration is not used and not
 * touched). The repository is indexed with dpkg-scanpackages (Debian package dpkg-dev), its unsigned Release file
 * written here; it is cached under CACHE_ROOT/apt/, keyed by the rootfs, the package list and this file's indexing.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { debian12 } from "../../modules/os/debian";
import { serveDirectory, type StaticServer } from "./artifact-mirror";
import { buildCached, CACHE_ROOT, execChecked, sha256Hex, type Rootfs } from "./rootfs";

/**
 * What install-containerd installs on debian-12, taken from the OS profile so the two cannot drift apart, and
 * Debian's containerd and runc: machines.test.ts checks with them that a machine runs containers at all, apart
 * from nodeforge (which installs the upstream containerd and runc releases).
 */
export const MIRROR_PACKAGES: string[] = [...debian12.basePackages, "containerd", "runc"];

export interface AptRepository {
  /** Directory holding the .deb files, Packages and Packages.gz. */
  path: string;
  /** File names of the .deb files in the repository. */
  debs: string[];
  /** True when this call downloaded and indexed the packages; then `seconds` is the build time. */
  built: boolean;
  seconds: number;
}

/** apt options that point every path apt reads or writes into `state`, and the dpkg status at the rootfs's. */
function isolatedAptOptions(rootfs: Rootfs, state: string, archives: string): string[] {
  const options: Record<string, string> = {
    "Dir::Etc::SourceList": join(state, "sources.list"),
    "Dir::Etc::SourceParts": join(state, "empty"),
    "Dir::Etc::Preferences": join(state, "empty", "preferences"),
    "Dir::Etc::PreferencesParts": join(state, "empty"),
    "Dir::Etc::Trusted": join(rootfs.path, "etc/apt/trusted.gpg"),
    "Dir::Etc::TrustedParts": join(rootfs.path, "etc/apt/trusted.gpg.d"),
    "Dir::State::Lists": join(state, "lists"),
    "Dir::State::status": join(rootfs.path, "var/lib/dpkg/status"),
    "Dir::State::extended_states": join(state, "extended_states"),
    "Dir::Cache": join(state, "cache"),
    "Dir::Cache::archives": archives,
    "APT::Architecture": rootfs.params.arch,
    "APT::Architectures": rootfs.params.arch,
    // A machine's apt installs recommended packages by default (a plain `apt-get install containerd`).
    "APT::Install-Recommends": "true",
    // The private directories are root's; apt's _apt download user could not write them.
    "APT::Sandbox::User": "root",
    "Debug::NoLocking": "1",
  };
  return Object.entries(options).flatMap(([key, value]) => ["-o", `${key}=${value}`]);
}

/**
 * Writes Packages, Packages.gz and a Release file listing both: with it apt fetches exactly these files, instead
 * of asking for Packages.xz, .bz2 and .lzma first (404s that apt-get update prints as errors).
 */
async function indexRepository(dir: string): Promise<void> {
  const packages = Buffer.from(await execChecked("dpkg-scanpackages", ["--multiversion", "."], { cwd: dir }));
  const gz = gzipSync(packages);
  writeFileSync(join(dir, "Packages"), packages);
  writeFileSync(join(dir, "Packages.gz"), gz);
  const entry = (content: Buffer, name: string): string => ` ${sha256Hex(content)} ${content.length} ${name}`;
  const release = [
    "Origin: nodeforge-test",
    "Label: nodeforge test repository",
    `Date: ${new Date().toUTCString()}`,
    "SHA256:",
    entry(packages, "Packages"),
    entry(gz, "Packages.gz"),
    "",
  ].join("\n");
  writeFileSync(join(dir, "Release"), release);
}

/**
 * Runs `use` with apt options for a private apt state under `work` (sources.list naming the rootfs's mirror and
 * suite, lists updated), downloads going to `archives`. The state directory is removed afterwards.
 */
async function withIsolatedApt(
  rootfs: Rootfs,
  work: string,
  archives: string,
  use: (apt: string[], env: NodeJS.ProcessEnv) => Promise<void>,
): Promise<void> {
  const state = join(work, ".apt-state");
  for (const dir of ["empty", "lists/partial", "cache"]) mkdirSync(join(state, dir), { recursive: true });
  mkdirSync(join(archives, "partial"), { recursive: true });
  const { mirror, suite } = rootfs.params;
  writeFileSync(join(state, "sources.list"), `deb ${mirror} ${suite} main\n`);
  const apt = isolatedAptOptions(rootfs, state, archives);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  try {
    await execChecked("apt-get", [...apt, "-q", "update"], { env });
    await use(apt, env);
  } finally {
    rmSync(state, { recursive: true, force: true });
    rmSync(join(archives, "partial"), { recursive: true, force: true });
    rmSync(join(archives, "lock"), { force: true });
  }
}

/** Downloads the named packages (no dependencies) for the rootfs's suite and arch into `dest`. */
export async function downloadPackages(rootfs: Rootfs, packages: string[], dest: string): Promise<void> {
  await withIsolatedApt(rootfs, dest, dest, async (apt, env) => {
    await execChecked("apt-get", [...apt, "-q", "download", ...packages], { env, cwd: dest });
  });
}

/** Downloads the named packages and whatever of their dependencies the rootfs lacks into `dest`. */
export async function downloadWithDependencies(rootfs: Rootfs, packages: string[], dest: string): Promise<void> {
  await withIsolatedApt(rootfs, dest, dest, async (apt, env) => {
    await execChecked("apt-get", [...apt, "-q", "-y", "--download-only", "install", ...packages], { env });
  });
}

async function buildRepository(rootfs: Rootfs, temp: string, packages: string[]): Promise<void> {
  mkdirSync(temp, { recursive: true });
  await withIsolatedApt(rootfs, temp, temp, async (apt, env) => {
    // Downloads what is missing from the rootfs, with dependencies; nothing is installed anywhere.
    await execChecked("apt-get", [...apt, "-q", "-y", "--download-only", "install", ...packages], { env });
    // The named packages that the rootfs already has are not downloaded above; the repository holds them anyway,
    // so it serves every package the step names (a reinstall, or a rootfs built with fewer packages).
    await execChecked("apt-get", [...apt, "-q", "download", ...packages], { env, cwd: temp });
  });
  await indexRepository(temp);
}

/** Returns the cached repository for `rootfs`, downloading and indexing it first when it is missing. */
export async function ensureAptRepository(
  rootfs: Rootfs,
  packages: string[] = MIRROR_PACKAGES,
): Promise<AptRepository> {
  const recipe = { rootfs: rootfs.key, packages: [...packages].sort(), index: indexRepository.toString() };
  const key = sha256Hex(JSON.stringify(recipe)).slice(0, 16);
  const path = join(CACHE_ROOT, "apt", key);
  const started = Date.now();
  const built = await buildCached(path, (temp) => buildRepository(rootfs, temp, packages));
  const debs = readdirSync(path).filter((name) => name.endsWith(".deb"));
  return { path, debs, built, seconds: (Date.now() - started) / 1000 };
}

/** The one line a machine's /etc/apt/sources.list holds: the local repository, trusted (it is unsigned). */
export function sourcesListLine(url: string): string {
  return `deb [trusted=yes] ${url}/ ./\n`;
}

/** Serves the repository on `address` (the host's bridge address). */
export function serveAptRepository(repo: AptRepository, address: string): Promise<StaticServer> {
  return serveDirectory(repo.path, address);
}
