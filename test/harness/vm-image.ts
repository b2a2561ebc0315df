/**
 * The Debian 12 disk image the lab's virtual machines (libvirt + qemu) boot from: a qcow2 file, made once and kept
 * under CACHE_ROOT, keyed by a hash of its parameters and of the code that builds it (as rootfs.ts does).
 *
 * The image is built without loop devices or mounts of the image: debootstrap and apt-get make a root directory,
 * `mkfs.ext4 -d` turns it into a file system image, a small FAT boot partition is made with `mkfs.vfat -C` and
 * filled with mtools (syslinux, kernel, initramfs), and both are glued into an MBR disk with sfdisk and dd, then
 * converted to qcow2. The BIOS boots syslinux's MBR, then syslinux on partition 1 loads the kernel with
 * root=/dev/vda2. The only mounts are /proc inside private mount namespaces (debootstrap's own, and `unshare
 * --mount-proc` around the chroot steps), which vanish with their processes.
 *
 * The image has no identity: no SSH host keys, an empty machine id, no host name. cloud-init (NoCloud data source
 * only: a seed ISO labelled `cidata`) gives each VM its name, network configuration (rendered for
 * systemd-networkd), authorized keys and the SSH host key the harness pins.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createReadStream } from "node:fs";
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import { buildCached, CACHE_ROOT, execChecked, hostArch, removeTree, sha256Hex } from "./rootfs";

/** What the image is made of; every field is part of the cache key. */
export interface VmImageParameters {
  suite: string;
  mirror: string;
  arch: string;
  /** debootstrap's first stage: the minimal system apt-get then installs the rest into. */
  variant: string;
  /** Installed with apt-get (no recommends) into the debootstrapped system, with dependencies. */
  packages: string[];
  /** Virtual size of the disk (an overlay may be larger: cloud-init's growpart then grows the root partition). */
  diskMiB: number;
  kernelCommandLine: string;
}

/**
 * The image's recipe. The kernel is Debian's cloud flavour (linux-image-cloud-amd64): it has every driver a
 * qemu/KVM machine needs (virtio, ata_piix and sr for the seed CD-ROM, iso9660) and what Kubernetes needs
 * (overlay, br_netfilter, vxlan, ip_vs, nf_tables), in a quarter of linux-image-amd64's size (105 MB vs 400 MB
 * installed). systemd-networkd (part of systemd) applies cloud-init's network configuration: no ifupdown needed.
 * cloud-guest-utils is growpart, for overlays larger than the image.
 */
export const VM_IMAGE: VmImageParameters = {
  suite: "bookworm",
  mirror: "http://deb.debian.org/debian",
  arch: "amd64",
  variant: "minbase",
  packages: [
    "linux-image-cloud-amd64",
    "initramfs-tools",
    "zstd",
    "udev",
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "cloud-init",
    "cloud-guest-utils",
    "sudo",
    "curl",
    "ca-certificates",
    "iproute2",
    "kmod",
    "procps",
    "netbase",
  ],
  diskMiB: 4096,
  // net.ifnames=0: the NIC is eth0 whatever bus or slot it sits on.
  kernelCommandLine: "root=/dev/vda2 rw console=ttyS0,115200 net.ifnames=0",
};

/** The image's first sectors before partition 1 (1 MiB: the usual alignment) and the boot partition's minimum. */
const FIRST_PARTITION_MIB = 1;
const MIN_BOOT_MIB = 32;
const MIB = 1024 * 1024;
const SYSLINUX_MBR = "/usr/lib/syslinux/mbr/mbr.bin";
const CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

interface ImageFile {
  path: string;
  content: string;
  mode: number;
}

const CLOUD_CFG = `# nodeforge lab VM image: the seed ISO (NoCloud, label cidata) is the only data source, so cloud-init never
# probes for cloud metadata services; None lets it finish without one.
datasource_list: [ NoCloud, None ]
system_info:
  network:
    renderers: [ networkd ]
    activators: [ networkd ]
`;

/** Written before the packages are installed, so dpkg skips documentation and the kernel's initramfs is built once. */
const PRE_INSTALL_FILES: ImageFile[] = [
  {
    path: "etc/dpkg/dpkg.cfg.d/90nodeforge-nodoc",
    content: [
      "path-exclude=/usr/share/doc/*",
      "path-include=/usr/share/doc/*/copyright",
      "path-exclude=/usr/share/man/*",
      "path-exclude=/usr/share/info/*",
      "path-exclude=/usr/share/lintian/*",
      "path-exclude=/usr/share/locale/*",
      "path-include=/usr/share/locale/locale.alias",
      "",
    ].join("\n"),
    mode: 0o644,
  },
  // No service may start inside the chroot while packages are installed.
  { path: "usr/sbin/policy-rc.d", content: "#!/bin/sh\nexit 101\n", mode: 0o755 },
  // Only the drivers a qemu machine needs to find its root disk and seed CD-ROM early (udev loads the rest after
  // switch_root): a 10 MB initramfs instead of 30+ MB, which matters when qemu emulates the CPU.
  {
    path: "etc/initramfs-tools/conf.d/90-nodeforge.conf",
    content: "MODULES=list\nRESUME=none\nCOMPRESS=zstd\n",
    mode: 0o644,
  },
  {
    path: "etc/initramfs-tools/modules",
    content: ["virtio_pci", "virtio_blk", "virtio_scsi", "ata_piix", "ahci", "sr_mod", ""].join("\n"),
    mode: 0o644,
  },
  { path: "etc/cloud/cloud.cfg.d/90_nodeforge.cfg", content: CLOUD_CFG, mode: 0o644 },
];

/** Written after the installation. */
const FILES: ImageFile[] = [
  { path: "etc/fstab", content: "/dev/vda2 / ext4 rw,errors=remount-ro 0 0\n", mode: 0o644 },
  // cloud-init's locale module regenerates locales (slow without KVM) unless the system locale is set.
  { path: "etc/default/locale", content: "LANG=C.UTF-8\n", mode: 0o644 },
  { path: "etc/hosts", content: "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n", mode: 0o644 },
  // No nameserver: the lab has no DNS (cloud-init's network configuration may add one).
  { path: "etc/resolv.conf", content: "# no DNS on nodeforge lab VMs\n", mode: 0o644 },
  { path: "etc/apt/sources.list", content: "# written per VM by the nodeforge test harness\n", mode: 0o644 },
  {
    path: "etc/apt/apt.conf.d/90nodeforge-test",
    content: 'Acquire::Languages "none";\nAcquire::http::Timeout "15";\n',
    mode: 0o644,
  },
  // Empty: systemd makes a new machine id on each VM's first boot.
  { path: "etc/machine-id", content: "", mode: 0o444 },
];

/**
 * Masked: maintenance that would run in the middle of a test, and the wait for "online" (cloud-init orders itself
 * after it; with no link to wait for, it would hold the boot for two minutes).
 */
const MASKED_UNITS = [
  "systemd-networkd-wait-online.service",
  "apt-daily.timer",
  "apt-daily.service",
  "apt-daily-upgrade.timer",
  "apt-daily-upgrade.service",
  "dpkg-db-backup.timer",
  "e2scrub_all.timer",
  "e2scrub_reap.service",
  "fstrim.timer",
];

const ENABLED_UNITS = ["systemd-networkd.service"];

function writeImageFile(root: string, file: ImageFile): void {
  const path = join(root, file.path);
  mkdirSync(dirname(path), { recursive: true });
  rmSync(path, { force: true });
  writeFileSync(path, file.content);
  chmodSync(path, file.mode);
}

/** Runs a command chrooted into `root`, in private mount and PID namespaces with their own /proc. */
async function inChroot(root: string, command: string[]): Promise<string> {
  return execChecked(
    "unshare",
    ["--fork", "--pid", "--mount", `--mount-proc=${join(root, "proc")}`, "chroot", root, ...command],
    {
      env: { PATH: CHROOT_PATH, DEBIAN_FRONTEND: "noninteractive", LANG: "C.UTF-8", HOME: "/root" },
      timeoutMs: 30 * 60_000,
    },
  );
}

async function installPackages(root: string, params: VmImageParameters): Promise<void> {
  for (const file of PRE_INSTALL_FILES) writeImageFile(root, file);
  await inChroot(root, [
    "apt-get",
    "install",
    "-y",
    "-q",
    "--no-install-recommends",
    "-o",
    "Dpkg::Options::=--force-confdef",
    "-o",
    "Dpkg::Options::=--force-confold",
    ...params.packages,
  ]);
  rmSync(join(root, "usr/sbin/policy-rc.d"), { force: true });
}

async function customize(root: string): Promise<void> {
  await inChroot(root, ["systemctl", "enable", ...ENABLED_UNITS]);
  await inChroot(root, ["systemctl", "mask", ...MASKED_UNITS]);
  // The .debs and package lists apt used: every VM would carry them.
  for (const dir of ["var/cache/apt/archives", "var/cache/apt", "var/lib/apt/lists"]) {
    for (const entry of readdirSync(join(root, dir))) {
      if (entry.endsWith(".deb") || entry.endsWith(".bin") || entry.includes("_dists_")) {
        rmSync(join(root, dir, entry), { force: true });
      }
    }
  }
  // openssh-server's postinst made host keys: no two VMs may share them. cloud-init writes the ones the harness
  // pins (ssh_keys), and Debian's ssh.service never makes new ones (cloud-init.service runs before sshd.service).
  for (const entry of readdirSync(join(root, "etc/ssh"))) {
    if (entry.startsWith("ssh_host_")) rmSync(join(root, "etc/ssh", entry));
  }
  // cloud-init's ssh_pwauth rewrites sshd_config's PasswordAuthentication and restarts sshd when the line changes,
  // which drops the first SSH sessions of a booting VM: the image already says what the harness's user-data says.
  const sshdConfig = join(root, "etc/ssh/sshd_config");
  const lines = readFileSync(sshdConfig, "utf8").split("\n");
  const at = lines.findIndex((line) => /^#?\s*PasswordAuthentication\s/.test(line));
  if (at >= 0) lines[at] = "PasswordAuthentication no";
  else lines.unshift("PasswordAuthentication no");
  writeFileSync(sshdConfig, lines.join("\n"));
  // systemd copies the D-Bus machine id into an empty /etc/machine-id: the dbus postinst made one for the image.
  rmSync(join(root, "var/lib/dbus/machine-id"), { force: true });
  symlinkSync("/etc/machine-id", join(root, "var/lib/dbus/machine-id"));
  // The build host's name (debootstrap copies it); cloud-init writes each VM's own.
  rmSync(join(root, "etc/hostname"), { force: true });
  for (const file of FILES) writeImageFile(root, file);
  // What the first stage (debootstrap) installed before dpkg's path excludes: documentation and translations.
  const share = join(root, "usr/share");
  await execChecked("find", [
    join(share, "doc"),
    "-mindepth",
    "1",
    "!",
    "-type",
    "d",
    "!",
    "-name",
    "copyright",
    "-delete",
  ]);
  await execChecked("find", [join(share, "doc"), "-mindepth", "1", "-type", "d", "-empty", "-delete"]);
  for (const dir of ["locale", "man", "info", "lintian"]) {
    if (!existsSync(join(share, dir))) continue;
    for (const entry of readdirSync(join(share, dir))) {
      if (entry !== "locale.alias") rmSync(join(share, dir, entry), { recursive: true, force: true });
    }
  }
  // Logs of the build, and a cloud-init state a build may have left.
  for (const dir of ["var/log", "var/lib/cloud"]) {
    if (existsSync(join(root, dir))) await execChecked("find", [join(root, dir), "-type", "f", "-delete"]);
  }
}

function syslinuxConfig(params: VmImageParameters): string {
  return [
    "SERIAL 0 115200",
    "DEFAULT linux",
    "PROMPT 0",
    "TIMEOUT 0",
    "LABEL linux",
    "  LINUX /vmlinuz",
    "  INITRD /initrd.img",
    `  APPEND ${params.kernelCommandLine}`,
    "",
  ].join("\n");
}

/** The kernel release installed in the root directory (exactly one). */
function kernelRelease(root: string): string {
  const releases = readdirSync(join(root, "lib/modules"));
  if (releases.length !== 1) throw new Error(`vm-image: expected one kernel, found ${releases.join(", ")}`);
  return releases[0]!;
}

/** Size in bytes of a directory tree as files (what mkfs.ext4 -d will copy). */
async function treeBytes(root: string): Promise<number> {
  return Number((await execChecked("du", ["-sb", "--one-file-system", root])).split(/\s/)[0]);
}

/**
 * The bootable disk from the root directory, in `dir`: boot.img (FAT, syslinux), root.img (ext4), disk.raw
 * (MBR: syslinux's mbr.bin, partition 1 boot flagged), then disk.qcow2. The raw files are removed.
 */
async function buildDisk(root: string, dir: string, params: VmImageParameters): Promise<string> {
  const release = kernelRelease(root);
  const kernel = join(root, "boot", `vmlinuz-${release}`);
  const initrd = join(root, "boot", `initrd.img-${release}`);
  const bootBytes = statSync(kernel).size + statSync(initrd).size;
  const bootMiB = Math.max(MIN_BOOT_MIB, Math.ceil((bootBytes * 1.2) / MIB) + 8);
  const rootMiB = params.diskMiB - FIRST_PARTITION_MIB - bootMiB;
  const content = await treeBytes(root);
  if (content * 1.3 > rootMiB * MIB) {
    throw new Error(`vm-image: ${Math.round(content / MIB)} MiB of files do not fit a ${rootMiB} MiB root partition`);
  }

  const bootImg = join(dir, "boot.img");
  const rootImg = join(dir, "root.img");
  const raw = join(dir, "disk.raw");
  // -h: the partition's first sector as the FAT's hidden sectors, where syslinux's boot sector finds itself.
  await execChecked("mkfs.vfat", [
    "-C",
    "-n",
    "NFBOOT",
    "-h",
    String((FIRST_PARTITION_MIB * MIB) / 512),
    bootImg,
    String(bootMiB * 1024),
  ]);
  await execChecked("syslinux", ["--install", bootImg]);
  writeFileSync(join(dir, "syslinux.cfg"), syslinuxConfig(params));
  await execChecked("mcopy", ["-i", bootImg, kernel, "::vmlinuz"]);
  await execChecked("mcopy", ["-i", bootImg, initrd, "::initrd.img"]);
  await execChecked("mcopy", ["-i", bootImg, join(dir, "syslinux.cfg"), "::syslinux.cfg"]);
  rmSync(join(dir, "syslinux.cfg"));

  await execChecked("mkfs.ext4", [
    "-q",
    "-F",
    "-L",
    "nfroot",
    "-E",
    "root_owner=0:0",
    "-d",
    root,
    rootImg,
    `${rootMiB}M`,
  ]);

  await execChecked("truncate", ["-s", `${params.diskMiB}M`, raw]);
  const sector = (mib: number): number => (mib * MIB) / 512;
  const table = [
    "label: dos",
    "unit: sectors",
    `start=${sector(FIRST_PARTITION_MIB)}, size=${sector(bootMiB)}, type=c, bootable`,
    `start=${sector(FIRST_PARTITION_MIB + bootMiB)}, size=${sector(rootMiB)}, type=83`,
    "",
  ].join("\n");
  await execChecked("sfdisk", ["--no-reread", "--no-tell-kernel", "-q", raw], { input: table });
  await execChecked("dd", [`if=${SYSLINUX_MBR}`, `of=${raw}`, "bs=440", "count=1", "conv=notrunc", "status=none"]);
  for (const [image, startMiB] of [
    [bootImg, FIRST_PARTITION_MIB],
    [rootImg, FIRST_PARTITION_MIB + bootMiB],
  ] as const) {
    await execChecked("dd", [
      `if=${image}`,
      `of=${raw}`,
      "bs=1M",
      `seek=${startMiB}`,
      "conv=notrunc,sparse",
      "status=none",
    ]);
    rmSync(image);
  }
  const qcow2 = join(dir, "disk.qcow2");
  // zstd-compressed clusters: less than half the size, and decompressing them costs the VMs nothing measurable
  // (overlays are written uncompressed).
  await execChecked("qemu-img", [
    "convert",
    "-f",
    "raw",
    "-O",
    "qcow2",
    "-c",
    "-o",
    "compression_type=zstd",
    raw,
    qcow2,
  ]);
  rmSync(raw);
  return release;
}

function fileSha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("error", reject)
      .on("end", () => resolve(hash.digest("hex")));
  });
}

/** The parameters, the files and every build step's code, hashed: the cache key. */
function imageKey(params: VmImageParameters): string {
  const code = [inChroot, installPackages, customize, buildDisk, syslinuxConfig].map((fn) => fn.toString());
  return sha256Hex(
    JSON.stringify({
      params,
      pre: PRE_INSTALL_FILES,
      files: FILES,
      masked: MASKED_UNITS,
      enabled: ENABLED_UNITS,
      code,
    }),
  ).slice(0, 16);
}

export interface VmImage {
  /** The cached qcow2 file: read-only by convention; VMs boot copy-on-write overlays of it. */
  path: string;
  sha256: string;
  format: "qcow2";
  /** Build time, when this call built the image. */
  seconds?: number;
}

interface Manifest {
  key: string;
  params: VmImageParameters;
  kernelRelease: string;
  sha256: string;
  bytes: number;
  buildSeconds: number;
}

/**
 * Returns the cached Debian 12 VM image, building it first when it is missing (debootstrap and apt-get from
 * deb.debian.org, then the disk: a few minutes). Needs root, debootstrap, util-linux (unshare, sfdisk),
 * e2fsprogs, dosfstools, mtools, syslinux, syslinux-common and qemu-utils.
 */
export async function labVmImage(): Promise<VmImage> {
  const arch = await hostArch();
  if (arch !== VM_IMAGE.arch)
    throw new Error(`vm-image: builds ${VM_IMAGE.arch} images on an ${VM_IMAGE.arch} host, not ${arch}`);
  const params = VM_IMAGE;
  const key = imageKey(params);
  const dir = join(CACHE_ROOT, `vm-image-${params.suite}-${params.arch}-${key}`);
  const started = Date.now();
  const built = await buildCached(dir, async (temp) => {
    const root = join(temp, "root");
    mkdirSync(temp, { recursive: true });
    await execChecked(
      "debootstrap",
      [`--variant=${params.variant}`, `--arch=${params.arch}`, params.suite, root, params.mirror],
      { timeoutMs: 30 * 60_000 },
    );
    await installPackages(root, params);
    await customize(root);
    const release = await buildDisk(root, temp, params);
    await removeTree(root);
    const qcow2 = join(temp, "disk.qcow2");
    const manifest: Manifest = {
      key,
      params,
      kernelRelease: release,
      sha256: await fileSha256(qcow2),
      bytes: statSync(qcow2).size,
      buildSeconds: (Date.now() - started) / 1000,
    };
    writeFileSync(join(temp, "image.json"), JSON.stringify(manifest, null, 2) + "\n");
    chmodSync(qcow2, 0o444);
  });
  const manifest = JSON.parse(readFileSync(join(dir, "image.json"), "utf8")) as Manifest;
  return {
    path: join(dir, "disk.qcow2"),
    sha256: manifest.sha256,
    format: "qcow2",
    ...(built ? { seconds: (Date.now() - started) / 1000 } : {}),
  };
}
