/**
 * Proof that a lab VM boots here: `node build/test/harness/vm-boot-check.js` (root; after `npm run build`).
 *
 * Builds (or reuses) the cached VM image, starts a private libvirtd, makes the lab bridge (network.ts), and boots
 * one VM from a copy-on-write overlay with a NoCloud seed ISO (user-data, meta-data, network-config: a static
 * address on the bridge, the root key, the pinned SSH host key). It waits until `ssh` with StrictHostKeyChecking=yes
 * and a known_hosts holding only the generated host key runs `true` as root, prints timings and what the VM says
 * about itself, then destroys and undefines the domain and removes every file, bridge and process it made.
 *
 * Also checks the generated files with `cloud-init schema` and `virt-xml-validate` when those are installed.
 */
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { startLibvirt, virshChecked, type Libvirt } from "./libvirt";
import { createNetwork, destroyNetworkSync, sweepStaleNetworks, type LabNetwork } from "./network";
import { execChecked, execProgram, isAlive } from "./rootfs";
import { readSshBanner } from "./ssh-banner";
import { labVmImage } from "./vm-image";

const RUN_PARENT = "/var/tmp";
const BOOT_TIMEOUT_MS = 300_000;
/** Overlay's virtual size: larger than the image, so cloud-init's growpart and resizefs have work to show. */
const OVERLAY_SIZE = "6G";
const MEMORY_MIB = 1024;
const VCPUS = Number(process.env.VM_CHECK_VCPUS ?? "2");

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function keygen(file: string, comment: string): Promise<string> {
  await execChecked("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]);
  return readFileSync(`${file}.pub`, "utf8").trim();
}

/** YAML's double-quoted scalar for any string (JSON strings are valid YAML). */
function quoted(text: string): string {
  return JSON.stringify(text);
}

/** A YAML block scalar (`|`) holding `text`, indented for a key at `indent` spaces. */
function block(text: string, indent: number): string {
  const pad = " ".repeat(indent + 2);
  return (
    "|\n" +
    text
      .trimEnd()
      .split("\n")
      .map((line) => `${pad}${line}`)
      .join("\n")
  );
}

interface SeedInput {
  name: string;
  clientPublicKey: string;
  hostPrivateKey: string;
  hostPublicKey: string;
  mac: string;
  address: string;
}

function userData(seed: SeedInput): string {
  return [
    "#cloud-config",
    "disable_root: false",
    "ssh_pwauth: false",
    "ssh_authorized_keys:",
    `  - ${quoted(seed.clientPublicKey)}`,
    // Delete any host keys and write exactly the pinned one (given ssh_keys, cloud-init generates no others).
    "ssh_deletekeys: true",
    "ssh_keys:",
    `  ed25519_private: ${block(seed.hostPrivateKey, 2)}`,
    `  ed25519_public: ${quoted(seed.hostPublicKey)}`,
    "",
  ].join("\n");
}

function metaData(seed: SeedInput): string {
  return `instance-id: ${seed.name}-${randomBytes(4).toString("hex")}\nlocal-hostname: ${seed.name}\n`;
}

function networkConfig(seed: SeedInput, prefix: number): string {
  return [
    "version: 2",
    "ethernets:",
    "  eth0:",
    "    match:",
    `      macaddress: ${quoted(seed.mac)}`,
    "    addresses:",
    `      - ${seed.address}/${prefix}`,
    "",
  ].join("\n");
}

interface DomainInput {
  name: string;
  disk: string;
  seedIso: string;
  mac: string;
  bridge: string;
  tap: string;
  consoleLog: string;
}

function xmlEscape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/'/g, "&apos;");
}

function domainXml(d: DomainInput): string {
  const e = xmlEscape;
  return `<domain type='qemu'>
  <name>${e(d.name)}</name>
  <memory unit='MiB'>${MEMORY_MIB}</memory>
  <vcpu>${VCPUS}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='${e(d.disk)}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='${e(d.seedIso)}'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <controller type='usb' model='none'/>
    <interface type='bridge'>
      <mac address='${e(d.mac)}'/>
      <source bridge='${e(d.bridge)}'/>
      <target dev='${e(d.tap)}'/>
      <model type='virtio'/>
    </interface>
    <serial type='file'>
      <source path='${e(d.consoleLog)}'/>
      <target port='0'/>
    </serial>
    <rng model='virtio'>
      <backend model='random'>/dev/urandom</backend>
    </rng>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

function sshArgs(key: string, knownHosts: string, address: string, command: string): string[] {
  return [
    "-F",
    "/dev/null",
    "-i",
    key,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `UserKnownHostsFile=${knownHosts}`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=5",
    "-o",
    "LogLevel=ERROR",
    `root@${address}`,
    command,
  ];
}

/** Runs a checker when installed; returns its verdict for the report. */
async function check(label: string, file: string, args: string[]): Promise<void> {
  const result = await execProgram(file, args).catch((error: Error) => ({
    code: -1,
    stdout: "",
    stderr: error.message,
  }));
  const output = (result.stdout + result.stderr).trim().split("\n").slice(-5).join(" | ");
  log(`${label}: exit ${result.code}: ${output}`);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("vm-boot-check: needs root");
  const t0 = Date.now();
  const image = await labVmImage();
  const imageBytes = Number((await execChecked("stat", ["-c", "%s", image.path])).trim());
  log(
    `image: ${image.path} (${(imageBytes / 1024 / 1024).toFixed(0)} MiB, sha256 ${image.sha256.slice(0, 16)}...)` +
      (image.seconds !== undefined ? `, built in ${image.seconds.toFixed(0)} s` : ", cached"),
  );

  await sweepStaleNetworks();
  // Run directories of checks that were killed outright (their libvirtd and qemu are swept by startLibvirt).
  for (const entry of readdirSync(RUN_PARENT)) {
    const owner = /^nodeforge-vmcheck-([0-9]+)-/.exec(entry)?.[1];
    if (owner && !isAlive(Number(owner))) rmSync(join(RUN_PARENT, entry), { recursive: true, force: true });
  }
  let libvirt: Libvirt | undefined;
  let network: LabNetwork | undefined;
  const dir = mkdtempSync(join(RUN_PARENT, `nodeforge-vmcheck-${process.pid}-`));
  const cleanupSync = (): void => {
    if (network) destroyNetworkSync(network);
    rmSync(dir, { recursive: true, force: true });
  };
  process.on("exit", cleanupSync);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => process.exit(130));

  const name = `nf${process.pid}-vm0`;
  try {
    const tLibvirt = Date.now();
    libvirt = await startLibvirt();
    log(`libvirtd: pid ${libvirt.pid}, ${libvirt.uri}, ready in ${Date.now() - tLibvirt} ms`);
    network = await createNetwork(0);
    const base = network.cidr.split(".").slice(0, 3).join(".");
    const address = `${base}.10`;
    log(`network: bridge ${network.bridge}, host ${network.hostAddress}, VM ${address}`);

    const clientKey = join(dir, "client_key");
    const clientPublicKey = await keygen(clientKey, "nodeforge-vm-check");
    const hostKeyFile = join(dir, "host_key");
    const hostPublicKey = await keygen(hostKeyFile, `root@${name}`);
    const knownHosts = join(dir, "known_hosts");
    writeFileSync(knownHosts, `${address} ${hostPublicKey.split(/\s+/).slice(0, 2).join(" ")}\n`);
    const mac = `52:54:00:${[...randomBytes(3)].map((b) => b.toString(16).padStart(2, "0")).join(":")}`;
    const seed: SeedInput = {
      name: "vm-0",
      clientPublicKey,
      hostPrivateKey: readFileSync(hostKeyFile, "utf8"),
      hostPublicKey,
      mac,
      address,
    };
    const seedDir = join(dir, "seed");
    mkdirSync(seedDir);
    writeFileSync(join(seedDir, "user-data"), userData(seed));
    writeFileSync(join(seedDir, "meta-data"), metaData(seed));
    writeFileSync(join(seedDir, "network-config"), networkConfig(seed, 24));
    const seedIso = join(dir, "seed.iso");
    await execChecked("xorriso", [
      "-as",
      "mkisofs",
      "-quiet",
      "-o",
      seedIso,
      "-V",
      "cidata",
      "-J",
      "-r",
      join(seedDir, "user-data"),
      join(seedDir, "meta-data"),
      join(seedDir, "network-config"),
    ]);
    const overlay = join(dir, "disk.qcow2");
    await execChecked("qemu-img", [
      "create",
      "-q",
      "-f",
      "qcow2",
      "-F",
      "qcow2",
      "-b",
      image.path,
      overlay,
      OVERLAY_SIZE,
    ]);
    const consoleLog = join(dir, "console.log");
    const xmlFile = join(dir, "domain.xml");
    writeFileSync(
      xmlFile,
      domainXml({ name, disk: overlay, seedIso, mac, bridge: network.bridge, tap: `nf${process.pid}t0`, consoleLog }),
    );
    chmodSync(clientKey, 0o600);

    if (existsSync("/usr/bin/cloud-init")) {
      await check("cloud-init schema (user-data)", "cloud-init", [
        "schema",
        "--config-file",
        join(seedDir, "user-data"),
      ]);
    } else log("cloud-init schema: cloud-init not installed on this host");
    await check("virt-xml-validate (domain.xml)", "virt-xml-validate", [xmlFile, "domain"]);

    const tDefine = Date.now();
    await virshChecked(libvirt.uri, ["define", xmlFile]);
    await virshChecked(libvirt.uri, ["start", name]);
    const tStarted = Date.now();
    log(`define+start: ${tStarted - tDefine} ms`);

    let tBanner = 0;
    let tSsh = 0;
    let lastError = "";
    while (Date.now() - tDefine < BOOT_TIMEOUT_MS) {
      if (!tBanner && (await readSshBanner(address)).startsWith("SSH-2.0-")) tBanner = Date.now();
      if (tBanner) {
        const result = await execProgram("ssh", sshArgs(clientKey, knownHosts, address, "true"), { timeoutMs: 20_000 });
        if (result.code === 0) {
          tSsh = Date.now();
          break;
        }
        lastError = result.stderr.trim();
      }
      await sleep(500);
    }
    const consoleText = existsSync(consoleLog) ? readFileSync(consoleLog, "utf8") : "";
    if (!tSsh) {
      log(`console (last 60 lines):\n${consoleText.split("\n").slice(-60).join("\n")}`);
      throw new Error(`vm-boot-check: no ssh within ${BOOT_TIMEOUT_MS / 1000} s (banner: ${!!tBanner}; ${lastError})`);
    }
    log(`define -> SSH banner: ${((tBanner - tDefine) / 1000).toFixed(1)} s`);
    log(`define -> ssh true (pinned host key): ${((tSsh - tDefine) / 1000).toFixed(1)} s`);

    const tRunning = Date.now();
    const state = await execProgram(
      "ssh",
      sshArgs(
        clientKey,
        knownHosts,
        address,
        "systemctl is-system-running --wait; cloud-init status --wait >/dev/null",
      ),
      { timeoutMs: BOOT_TIMEOUT_MS },
    );
    log(
      `define -> boot finished (is-system-running: ${state.stdout.trim()}), cloud-init done: ` +
        `${((Date.now() - tDefine) / 1000).toFixed(1)} s (waited ${((Date.now() - tRunning) / 1000).toFixed(1)} s)`,
    );

    const remote = async (command: string): Promise<string> => {
      const result = await execProgram("ssh", sshArgs(clientKey, knownHosts, address, command), { timeoutMs: 60_000 });
      return (result.stdout + result.stderr).trim();
    };
    for (const command of [
      "systemd-analyze",
      "stat -fc %T /sys/fs/cgroup",
      "uname -r; cat /proc/cmdline",
      "cloud-init status --long",
      "ls /etc/ssh/ | grep ssh_host; ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub",
      "ip -br -4 addr; df -h /",
      "systemctl --failed --no-legend; systemctl is-system-running",
      "systemd-analyze blame | head -12",
      "systemd-analyze critical-chain ssh.service | tail -n +3",
      "grep -iE 'warn|error' /var/log/cloud-init.log | grep -v DEBUG | tail -5",
      "grep -E 'Applying network configuration|Found DataSource' /var/log/cloud-init.log | cut -c1-160",
      "du -xm -d3 / 2>/dev/null | sort -n | tail -12",
    ]) {
      log(`--- ${command}\n${await remote(command)}`);
    }
    log(`local host key: ${(await execChecked("ssh-keygen", ["-lf", `${hostKeyFile}.pub`])).trim()}`);
    const qemuLog = join(libvirt.dir, "log", "qemu", `${name}.log`);
    if (existsSync(qemuLog)) {
      const cmdline =
        readFileSync(qemuLog, "utf8")
          .split("\n")
          .find((line) => line.includes("qemu-system")) ?? "";
      log(`qemu: ${cmdline.slice(0, 400)}...`);
    }
    log(
      `console: ${consoleText.split("\n").length} lines; total run so far ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );

    const tDestroy = Date.now();
    await virshChecked(libvirt.uri, ["destroy", name]);
    await virshChecked(libvirt.uri, ["undefine", name]);
    log(`destroy+undefine: ${Date.now() - tDestroy} ms`);
  } finally {
    const tStop = Date.now();
    await libvirt?.stop();
    cleanupSync();
    network = undefined;
    log(`cleanup: ${Date.now() - tStop} ms`);
  }
}

main().then(
  () => process.exit(0),
  (error: Error) => {
    process.stderr.write(`${error.stack ?? error.message}\n`);
    process.exit(1);
  },
);
