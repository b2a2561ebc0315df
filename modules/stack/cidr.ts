/** IPv4/IPv6 address and CIDR arithmetic, on bigints so both families share one code path. */
import { isIP } from "node:net";

export interface Cidr {
  family: 4 | 6;
  /** Network address (host bits cleared). */
  network: bigint;
  prefix: number;
  text: string;
}

const BITS = { 4: 32, 6: 128 } as const;

export function parseAddress(text: string): { family: 4 | 6; value: bigint } | undefined {
  const family = isIP(text);
  if (family === 4) {
    const value = text.split(".").reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
    return { family: 4, value };
  }
  if (family === 6) {
    return { family: 6, value: ipv6ToBigint(text) };
  }
  return undefined;
}

function ipv6ToBigint(text: string): bigint {
  // An embedded IPv4 tail (::ffff:192.0.2.1) becomes two hex groups first.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", rest] = text.split("::");
  const headGroups = head ? head.split(":") : [];
  const restGroups = rest ? rest.split(":") : [];
  const groups =
    rest === undefined
      ? headGroups
      : [...headGroups, ...Array<string>(8 - headGroups.length - restGroups.length).fill("0"), ...restGroups];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

export function formatAddress(family: 4 | 6, value: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => ((value >> shift) & 0xffn).toString()).join(".");
  }
  const groups: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(((value >> shift) & 0xffffn).toString(16));
  // Compress the longest run of zero groups, as RFC 5952 asks.
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLength && j - i > 1) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(":");
  const left = groups.slice(0, bestStart).join(":");
  const right = groups.slice(bestStart + bestLength).join(":");
  return `${left}::${right}`;
}

/**
 * Parses `addr/prefix`; when it is not a valid network CIDR, returns the reason, worded to follow the quoted
 * CIDR text (`'10.96.0.0/33' has prefix /33, which is out of range 0-32`).
 */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf("/");
  if (slash < 0) return "must be a CIDR like 10.96.0.0/12 (address/prefix)";
  const address = parseAddress(text.slice(0, slash));
  if (!address) return `has address '${text.slice(0, slash)}', which is not an IPv4 or IPv6 address`;
  const prefixText = text.slice(slash + 1);
  const prefix = Number(prefixText);
  const bits = BITS[address.family];
  if (!/^\d{1,3}$/.test(prefixText) || prefix > bits) {
    return `has prefix /${prefixText}, which is out of range 0-${bits}`;
  }
  const hostBits = BigInt(bits - prefix);
  const network = (address.value >> hostBits) << hostBits;
  if (network !== address.value) {
    return `has host bits set; the network is ${formatAddress(address.family, network)}/${prefix}`;
  }
  return { family: address.family, network, prefix, text };
}

export function cidrSize(cidr: Cidr): bigint {
  return 1n << BigInt(BITS[cidr.family] - cidr.prefix);
}

export function cidrContains(cidr: Cidr, family: 4 | 6, value: bigint): boolean {
  if (cidr.family !== family) return false;
  return value >= cidr.network && value < cidr.network + cidrSize(cidr);
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b.family, b.network) || cidrContains(b, a.family, a.network);
}

/** The n-th address of a CIDR (0 is the network address). */
export function nthAddress(cidr: Cidr, n: number): string {
  return formatAddress(cidr.family, cidr.network + BigInt(n));
}
