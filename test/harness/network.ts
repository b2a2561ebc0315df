/**
 * The test machines' network: one bridge on the host with a private /24, and per machine a network namespace
 * joined to it by a veth pair. The host side of the bridge is .1 (where the mirrors listen), machine i is .(10+i).
 * No default route, no forwarding, no NAT: machines reach each other and the host's bridge address, nothing else.
 *
 * Every name carries this process's pid (bridge `nfbr<pid>`, namespaces `nf<pid>-m<i>`, host veths `nf<pid>v<i>`),
 * so sweepStaleNetworks() can tell leftovers of a killed run from another run's live network.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { execChecked, execProgram, isAlive } from "./rootfs";

export interface MachineLink {
  /** Network namespace name (`ip netns`), bound at /run/netns/<netns>. */
  netns: string;
  nsPath: string;
  /** Host end of the veth pair (a bridge port); the machine's end is `eth0` inside the namespace. */
  hostVeth: string;
  address: string;
}

export interface LabNetwork {
  bridge: string;
  /** `10.213.X.0/24`. */
  cidr: string;
  /** The host's address on the bridge: mirrors listen here, machines reach the host only here. */
  hostAddress: string;
  links: MachineLink[];
}

const PREFIX_LENGTH = 24;

function ipToInt(ip: string): number {
  return ip.split(".").reduce((acc, part) => acc * 256 + Number(part), 0);
}

function overlaps(a: string, b: string): boolean {
  const [aIp, aLen] = a.split("/");
  const [bIp, bLen] = b.split("/");
  const len = Math.min(Number(aLen ?? 32), Number(bLen ?? 32));
  if (len === 0) return true;
  const mask = len === 32 ? 0xffffffff : ~((1 << (32 - len)) - 1) >>> 0;
  return (ipToInt(aIp ?? "") & mask) >>> 0 === (ipToInt(bIp ?? "") & mask) >>> 0;
}

/** Every IPv4 prefix already on this host (addresses and routes of all tables), default routes excepted. */
async function usedPrefixes(): Promise<string[]> {
  const addrs = await execChecked("ip", ["-o", "-4", "addr", "show"]);
  const routes = await execChecked("ip", ["-o", "-4", "route", "show", "table", "all"]);
  const used: string[] = [];
  for (const line of addrs.split("\n")) {
    const match = / inet ([0-9.]+\/[0-9]+)/.exec(line);
    if (match?.[1]) used.push(match[1]);
  }
  for (const line of routes.split("\n")) {
    const first = line.trim().split(/\s+/)[0] ?? "";
    const dest = ["broadcast", "local", "unicast", "multicast"].includes(first) ? line.trim().split(/\s+/)[1] : first;
    if (!dest || dest === "default" || !/^[0-9.]+(\/[0-9]+)?$/.test(dest)) continue;
    used.push(dest.includes("/") ? dest : `${dest}/32`);
  }
  return used;
}

/** A free 10.213.X.0/24: X starts from the pid (so parallel runs rarely meet) and skips anything in use. */
async function chooseSubnet(): Promise<string> {
  const used = await usedPrefixes();
  for (let step = 0; step < 250; step += 1) {
    const x = ((process.pid + step) % 250) + 1;
    const cidr = `10.213.${x}.0/${PREFIX_LENGTH}`;
    if (!used.some((prefix) => overlaps(prefix, cidr))) return cidr;
  }
  throw new Error("network: no free 10.213.X.0/24 on this host");
}

async function ip(args: string[]): Promise<void> {
  await execChecked("ip", args);
}

/** Writes a sysctl in the host's or a namespace's /proc/sys (IPv6 off on lab links keeps the lab IPv4-only). */
async function sysctl(netns: string | undefined, key: string, value: string): Promise<void> {
  const args = ["-w", `${key}=${value}`];
  if (netns) await execChecked("ip", ["netns", "exec", netns, "sysctl", "-q", ...args]);
  else await execChecked("sysctl", ["-q", ...args]);
}

export function bridgeName(pid: number = process.pid): string {
  return `nfbr${pid}`;
}

/** Creates the bridge and `count` namespaces; on failure removes whatever it had made. */
export async function createNetwork(count: number): Promise<LabNetwork> {
  const cidr = await chooseSubnet();
  const base = cidr.split(".").slice(0, 3).join(".");
  const net: LabNetwork = { bridge: bridgeName(), cidr, hostAddress: `${base}.1`, links: [] };
  try {
    await ip(["link", "add", "name", net.bridge, "type", "bridge"]);
    await sysctl(undefined, `net.ipv6.conf.${net.bridge}.disable_ipv6`, "1");
    await ip(["addr", "add", `${net.hostAddress}/${PREFIX_LENGTH}`, "dev", net.bridge]);
    await ip(["link", "set", net.bridge, "up"]);
    for (let i = 0; i < count; i += 1) {
      const link: MachineLink = {
        netns: `nf${process.pid}-m${i}`,
        nsPath: `/run/netns/nf${process.pid}-m${i}`,
        hostVeth: `nf${process.pid}v${i}`,
        address: `${base}.${10 + i}`,
      };
      net.links.push(link);
      await ip(["netns", "add", link.netns]);
      await ip(["link", "add", link.hostVeth, "type", "veth", "peer", "name", "eth0", "netns", link.netns]);
      await sysctl(undefined, `net.ipv6.conf.${link.hostVeth}.disable_ipv6`, "1");
      await ip(["link", "set", link.hostVeth, "master", net.bridge, "up"]);
      await sysctl(link.netns, "net.ipv6.conf.eth0.disable_ipv6", "1");
      await ip(["-n", link.netns, "addr", "add", `${link.address}/${PREFIX_LENGTH}`, "dev", "eth0"]);
      await ip(["-n", link.netns, "link", "set", "lo", "up"]);
      await ip(["-n", link.netns, "link", "set", "eth0", "up"]);
    }
    return net;
  } catch (error) {
    destroyNetworkSync(net);
    throw error;
  }
}

function quietSync(file: string, args: string[]): void {
  spawnSync(file, args, { stdio: "ignore" });
}

/**
 * Removes the namespaces, veths and bridge. Synchronous, so the process 'exit' handler can use it too. Call it
 * after the machines have stopped: a namespace whose processes still run outlives its name.
 */
export function destroyNetworkSync(net: LabNetwork): void {
  for (const link of net.links) {
    if (existsSync(link.nsPath)) quietSync("ip", ["netns", "del", link.netns]);
    quietSync("ip", ["link", "del", link.hostVeth]);
  }
  quietSync("ip", ["link", "del", net.bridge]);
}

/** Names of lab links and namespaces on this host, whatever run made them. */
export async function labResidue(): Promise<{ links: string[]; namespaces: string[] }> {
  const links = (await execProgram("ip", ["-o", "link", "show"])).stdout
    .split("\n")
    .map((line) => line.split(":")[1]?.trim().split("@")[0] ?? "")
    .filter((name) => /^nf(br)?[0-9]+(v[0-9]+)?$/.test(name));
  const namespaces = existsSync("/run/netns")
    ? readdirSync("/run/netns").filter((n) => /^nf[0-9]+-m[0-9]+$/.test(n))
    : [];
  return { links, namespaces };
}

/** Removes lab bridges, veths and namespaces left by runs whose process no longer exists (killed with SIGKILL). */
export async function sweepStaleNetworks(): Promise<string[]> {
  const { links, namespaces } = await labResidue();
  const removed: string[] = [];
  const ownerDead = (name: string): boolean => !isAlive(Number(/[0-9]+/.exec(name)?.[0] ?? "0"));
  for (const ns of namespaces.filter(ownerDead)) {
    await execProgram("ip", ["netns", "del", ns]);
    removed.push(ns);
  }
  for (const link of links.filter(ownerDead)) {
    await execProgram("ip", ["link", "del", link]);
    removed.push(link);
  }
  return removed;
}
