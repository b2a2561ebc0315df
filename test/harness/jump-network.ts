/**
 * A machine reachable only through a bastion, made of two network namespaces this harness creates:
 *
 *   host netns ── veth ── [ bastion netns ] ── veth ── [ target netns ]
 *   10.214.X.1/30          10.214.X.2/30  10.214.X.5/30  10.214.X.6/30
 *
 * The bastion's sshd listens on 10.214.X.2 (the host reaches it over the first veth); the target machine's sshd
 * listens on 10.214.X.6, which only the bastion namespace has a route to. IP forwarding is off in every new
 * namespace, and the host gets an `unreachable` route for the target's /30, so a direct connection from the
 * host fails at once (instead of wandering to the host's default gateway), while the bastion opens TCP channels
 * to the target on the host's behalf.
 *
 * Names carry this process's pid (`nfj<pid>b`, `nfj<pid>t`, veth `nfj<pid>h`), so a run killed outright is swept
 * by the next one. destroy() removes the namespaces (their veth ends go with them) and the route; it also runs
 * from the process's exit handler.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";

export interface JumpNetwork {
  /** Namespace of the bastion (run its sshd with `netns: bastionNetns`). */
  bastionNetns: string;
  /** Namespace of the target machine. */
  targetNetns: string;
  /** Host side of the host-bastion link. */
  hostAddress: string;
  /** The bastion's address as the host reaches it. */
  bastionAddress: string;
  /** The bastion's address on the bastion-target link. */
  bastionInnerAddress: string;
  /** The target's address: reachable from the bastion only. */
  targetAddress: string;
  /** The target's /30, routed `unreachable` on the host. */
  targetPrefix: string;
  destroy(): void;
}

const NAME = /^nfj([0-9]+)[bht]$/;

function ip(args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

function quiet(args: string[]): void {
  spawnSync("ip", args, { stdio: "ignore" });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes namespaces, veths and routes left by runs whose process is gone. */
function sweep(): void {
  const namespaces = existsSync("/run/netns") ? readdirSync("/run/netns") : [];
  for (const ns of namespaces) {
    const owner = NAME.exec(ns)?.[1];
    if (owner && !alive(Number(owner))) quiet(["netns", "del", ns]);
  }
  const links = execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" })
    .split("\n")
    .map((line) => line.split(":")[1]?.trim().split("@")[0] ?? "");
  for (const link of links) {
    const owner = NAME.exec(link)?.[1];
    if (owner && !alive(Number(owner))) quiet(["link", "del", link]);
  }
  // Unreachable routes of dead runs: the route carries no pid, so only those in 10.214/16 whose veth is gone.
  const routes = execFileSync("ip", ["-4", "route", "show", "type", "unreachable"], { encoding: "utf8" });
  for (const line of routes.split("\n")) {
    const prefix = /^unreachable (10\.214\.[0-9]+\.4\/30)/.exec(line)?.[1];
    const peer = prefix?.replace(/\.4\/30$/, ".1");
    const inUse = peer && execFileSync("ip", ["-4", "-o", "addr", "show"], { encoding: "utf8" }).includes(` ${peer}/`);
    if (prefix && !inUse) quiet(["route", "del", "unreachable", prefix]);
  }
}

/** A free 10.214.X.0/29 (two /30s): X from the pid, skipping any already on the host. */
function chooseBase(): string {
  const used =
    execFileSync("ip", ["-4", "-o", "addr", "show"], { encoding: "utf8" }) +
    execFileSync("ip", ["-4", "route", "show", "table", "all"], { encoding: "utf8" });
  for (let step = 0; step < 250; step++) {
    const base = `10.214.${((process.pid + step) % 250) + 1}`;
    if (!used.includes(`${base}.`)) return base;
  }
  throw new Error("jump network: no free 10.214.X.0/29 on this host");
}

/** Builds the two namespaces and links; on failure removes what it made. */
export function createJumpNetwork(): JumpNetwork {
  sweep();
  const pid = process.pid;
  const base = chooseBase();
  const net: JumpNetwork = {
    bastionNetns: `nfj${pid}b`,
    targetNetns: `nfj${pid}t`,
    hostAddress: `${base}.1`,
    bastionAddress: `${base}.2`,
    bastionInnerAddress: `${base}.5`,
    targetAddress: `${base}.6`,
    targetPrefix: `${base}.4/30`,
    destroy: () => undefined,
  };
  const hostVeth = `nfj${pid}h`;
  let done = false;
  const destroy = (): void => {
    if (done) return;
    done = true;
    process.removeListener("exit", destroy);
    quiet(["route", "del", "unreachable", net.targetPrefix]);
    quiet(["netns", "del", net.bastionNetns]);
    quiet(["netns", "del", net.targetNetns]);
    quiet(["link", "del", hostVeth]);
  };
  net.destroy = destroy;
  process.once("exit", destroy);
  try {
    ip(["netns", "add", net.bastionNetns]);
    ip(["netns", "add", net.targetNetns]);
    // host <-> bastion
    ip(["link", "add", hostVeth, "type", "veth", "peer", "name", "up0", "netns", net.bastionNetns]);
    ip(["addr", "add", `${net.hostAddress}/30`, "dev", hostVeth]);
    ip(["link", "set", hostVeth, "up"]);
    ip(["-n", net.bastionNetns, "addr", "add", `${net.bastionAddress}/30`, "dev", "up0"]);
    ip(["-n", net.bastionNetns, "link", "set", "up0", "up"]);
    // bastion <-> target
    ip([
      "-n",
      net.bastionNetns,
      "link",
      "add",
      "down0",
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      net.targetNetns,
    ]);
    ip(["-n", net.bastionNetns, "addr", "add", `${net.bastionInnerAddress}/30`, "dev", "down0"]);
    ip(["-n", net.bastionNetns, "link", "set", "down0", "up"]);
    ip(["-n", net.targetNetns, "addr", "add", `${net.targetAddress}/30`, "dev", "eth0"]);
    ip(["-n", net.targetNetns, "link", "set", "eth0", "up"]);
    for (const ns of [net.bastionNetns, net.targetNetns]) ip(["-n", ns, "link", "set", "lo", "up"]);
    // The host has no path to the target; say so instead of sending its packets to the default gateway.
    ip(["route", "add", "unreachable", net.targetPrefix]);
    return net;
  } catch (error) {
    destroy();
    throw error;
  }
}

/** Names of this harness's namespaces and links still present (for the cleanup assertion). */
export function jumpResidue(pid: number = process.pid): string[] {
  const namespaces = existsSync("/run/netns") ? readdirSync("/run/netns") : [];
  const links = execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" })
    .split("\n")
    .map((line) => line.split(":")[1]?.trim().split("@")[0] ?? "");
  return [...namespaces, ...links].filter((name) => NAME.exec(name)?.[1] === String(pid));
}
