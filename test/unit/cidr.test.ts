/** Address and CIDR arithmetic of modules/stack/cidr.ts, IPv4 and IPv6. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  cidrContains,
  cidrSize,
  cidrsOverlap,
  formatAddress,
  nthAddress,
  parseAddress,
  parseCidr,
  type Cidr,
} from "../../modules/stack/cidr";

/** Parses a CIDR that the test expects to be valid. */
function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (typeof parsed === "string") throw new Error(`test setup: ${text} ${parsed}`);
  return parsed;
}

/** parseAddress then formatAddress: the canonical text of an address. */
function canonical(text: string): string {
  const parsed = parseAddress(text);
  if (!parsed) throw new Error(`test setup: ${text} is not an address`);
  return formatAddress(parsed.family, parsed.value);
}

describe("parseAddress", () => {
  it("reads IPv4 addresses as 32-bit numbers", () => {
    assert.deepEqual(parseAddress("192.0.2.1"), { family: 4, value: 0xc0000201n });
    assert.deepEqual(parseAddress("0.0.0.0"), { family: 4, value: 0n });
    assert.deepEqual(parseAddress("255.255.255.255"), { family: 4, value: 0xffffffffn });
    assert.deepEqual(parseAddress("10.96.0.10"), { family: 4, value: 0x0a60000an });
  });

  it("reads IPv6 addresses, compressed or not, in any case", () => {
    assert.deepEqual(parseAddress("::"), { family: 6, value: 0n });
    assert.deepEqual(parseAddress("::1"), { family: 6, value: 1n });
    assert.deepEqual(parseAddress("1::"), { family: 6, value: 1n << 112n });
    assert.deepEqual(parseAddress("2001:db8::1"), { family: 6, value: 0x20010db8000000000000000000000001n });
    assert.deepEqual(parseAddress("2001:0DB8:0000:0000:0000:0000:0000:0001"), {
      family: 6,
      value: 0x20010db8000000000000000000000001n,
    });
    assert.deepEqual(parseAddress("1:2:3:4:5:6:7:8"), { family: 6, value: 0x00010002000300040005000600070008n });
    assert.deepEqual(parseAddress("fd00:10:96::a"), { family: 6, value: 0xfd00001000960000000000000000000an });
  });

  it("reads an embedded IPv4 tail as the last 32 bits", () => {
    assert.deepEqual(parseAddress("::ffff:192.0.2.1"), { family: 6, value: 0xffffc0000201n });
    assert.deepEqual(parseAddress("64:ff9b::198.51.100.7"), { family: 6, value: 0x0064ff9b0000000000000000c6336407n });
  });

  it("returns undefined for anything that is not an address", () => {
    for (const text of [
      "",
      "localhost",
      "256.0.0.1",
      "1.2.3",
      "1.2.3.4.5",
      "01.2.3.4",
      "192.0.2.1/24",
      " 192.0.2.1",
      ":::",
      "1::2::3",
      "12345::",
      "g::1",
      "1:2:3:4:5:6:7:8:9",
    ]) {
      assert.equal(parseAddress(text), undefined, text);
    }
  });
});

describe("formatAddress", () => {
  it("writes IPv4 as dotted quads", () => {
    assert.equal(formatAddress(4, 0xc0000201n), "192.0.2.1");
    assert.equal(formatAddress(4, 0n), "0.0.0.0");
    assert.equal(formatAddress(4, 0xffffffffn), "255.255.255.255");
  });

  it("writes IPv6 as RFC 5952 asks: lowercase, no leading zeros, longest zero run compressed", () => {
    assert.equal(formatAddress(6, 0n), "::");
    assert.equal(formatAddress(6, 1n), "::1");
    assert.equal(formatAddress(6, 1n << 112n), "1::");
    assert.equal(formatAddress(6, 0x20010db8000000000000000000000001n), "2001:db8::1");
    assert.equal(formatAddress(6, 0x20010db8000000000000000000000000n), "2001:db8::");
    assert.equal(formatAddress(6, 0x00010002000300040005000600070008n), "1:2:3:4:5:6:7:8");
    assert.equal(formatAddress(6, 0xfd00001000960000000000000000000an), "fd00:10:96::a");
    assert.equal(formatAddress(6, 0xabcdef00000000000000000000000000n), "abcd:ef00::");
  });

  it("compresses the first of two equally long zero runs (RFC 5952 4.2.3)", () => {
    assert.equal(canonical("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
  });

  it("compresses the longest zero run even when a shorter one comes first", () => {
    assert.equal(canonical("2001:0:0:1:0:0:0:1"), "2001:0:0:1::1");
  });

  it("never compresses a single zero group (RFC 5952 4.2.2)", () => {
    assert.equal(canonical("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");
    assert.equal(canonical("2001:db8::1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");
  });

  it("drops leading zeros and lowercases", () => {
    assert.equal(canonical("2001:0DB8:0000:0000:0000:0000:0000:0001"), "2001:db8::1");
    assert.equal(canonical("FD00:0010:0096::000A"), "fd00:10:96::a");
  });

  it("writes an IPv4-mapped address in hex groups, as the WHATWG URL parser does", () => {
    assert.equal(canonical("::ffff:192.0.2.1"), "::ffff:c000:201");
  });

  it("round-trips canonical text unchanged", () => {
    for (const text of ["::", "::1", "1::", "fe80::1", "2001:db8::1:0:0:1", "1:2:3:4:5:6:7:8", "10.96.0.10"]) {
      assert.equal(canonical(text), text);
    }
  });
});

describe("parseCidr", () => {
  it("parses IPv4 networks", () => {
    assert.deepEqual(parseCidr("10.96.0.0/12"), { family: 4, network: 0x0a600000n, prefix: 12, text: "10.96.0.0/12" });
    assert.deepEqual(parseCidr("0.0.0.0/0"), { family: 4, network: 0n, prefix: 0, text: "0.0.0.0/0" });
    assert.deepEqual(parseCidr("192.0.2.7/32"), { family: 4, network: 0xc0000207n, prefix: 32, text: "192.0.2.7/32" });
  });

  it("parses IPv6 networks", () => {
    assert.deepEqual(parseCidr("fd00:10:96::/112"), {
      family: 6,
      network: 0xfd000010009600000000000000000000n,
      prefix: 112,
      text: "fd00:10:96::/112",
    });
    assert.deepEqual(parseCidr("::/0"), { family: 6, network: 0n, prefix: 0, text: "::/0" });
    assert.deepEqual(parseCidr("::1/128"), { family: 6, network: 1n, prefix: 128, text: "::1/128" });
  });

  it("explains a missing prefix", () => {
    assert.equal(parseCidr("10.96.0.0"), "must be a CIDR like 10.96.0.0/12 (address/prefix)");
  });

  it("explains an address that is not one", () => {
    assert.equal(parseCidr("10.96.0.256/12"), "has address '10.96.0.256', which is not an IPv4 or IPv6 address");
    assert.equal(parseCidr("cluster/12"), "has address 'cluster', which is not an IPv4 or IPv6 address");
    assert.equal(parseCidr("/12"), "has address '', which is not an IPv4 or IPv6 address");
  });

  it("explains a prefix out of range for the family", () => {
    assert.equal(parseCidr("10.96.0.0/33"), "has prefix /33, which is out of range 0-32");
    assert.equal(parseCidr("fd00::/129"), "has prefix /129, which is out of range 0-128");
    assert.equal(parseCidr("10.96.0.0/"), "has prefix /, which is out of range 0-32");
    assert.equal(parseCidr("10.96.0.0/-1"), "has prefix /-1, which is out of range 0-32");
    assert.equal(parseCidr("10.96.0.0/1e1"), "has prefix /1e1, which is out of range 0-32");
    assert.equal(parseCidr("10.96.0.0/1000"), "has prefix /1000, which is out of range 0-32");
  });

  it("names the network when host bits are set", () => {
    assert.equal(parseCidr("10.96.0.1/12"), "has host bits set; the network is 10.96.0.0/12");
    assert.equal(parseCidr("10.244.1.0/16"), "has host bits set; the network is 10.244.0.0/16");
    assert.equal(parseCidr("fd00:10:96::1/112"), "has host bits set; the network is fd00:10:96::/112");
    assert.equal(parseCidr("2001:db8::1/0"), "has host bits set; the network is ::/0");
  });
});

describe("cidrSize and cidrContains", () => {
  it("counts addresses", () => {
    assert.equal(cidrSize(cidr("10.96.0.0/12")), 1n << 20n);
    assert.equal(cidrSize(cidr("192.0.2.7/32")), 1n);
    assert.equal(cidrSize(cidr("fd00:10:96::/112")), 65536n);
    assert.equal(cidrSize(cidr("::/0")), 1n << 128n);
  });

  it("includes the first and last address and nothing outside", () => {
    const net = cidr("10.96.0.0/12");
    assert.equal(cidrContains(net, 4, 0x0a600000n), true);
    assert.equal(cidrContains(net, 4, 0x0a6fffffn), true);
    assert.equal(cidrContains(net, 4, 0x0a700000n), false);
    assert.equal(cidrContains(net, 4, 0x0a5fffffn), false);
  });

  it("never contains an address of the other family", () => {
    assert.equal(cidrContains(cidr("0.0.0.0/0"), 6, 1n), false);
    assert.equal(cidrContains(cidr("::/0"), 4, 0x0a600000n), false);
  });
});

describe("cidrsOverlap", () => {
  const cases: [string, string, boolean][] = [
    ["10.96.0.0/12", "10.96.0.0/12", true],
    ["10.0.0.0/8", "10.244.0.0/16", true],
    ["10.244.0.0/16", "10.0.0.0/8", true],
    ["10.244.0.0/16", "10.96.0.0/12", false],
    ["10.96.0.0/12", "10.112.0.0/12", false],
    ["10.96.0.0/12", "10.111.255.255/32", true],
    ["0.0.0.0/0", "192.0.2.0/24", true],
    ["fd00:10:96::/112", "fd00:10::/32", true],
    ["fd00:10:96::/112", "fd00:10:96::1:0/112", false],
    ["::/0", "10.0.0.0/8", false],
    ["10.0.0.0/8", "::/0", false],
  ];
  for (const [a, b, expected] of cases) {
    it(`${a} and ${b}: ${expected ? "overlap" : "disjoint"}`, () => {
      assert.equal(cidrsOverlap(cidr(a), cidr(b)), expected);
    });
  }
});

describe("nthAddress", () => {
  it("counts from the network address", () => {
    assert.equal(nthAddress(cidr("10.96.0.0/12"), 0), "10.96.0.0");
    assert.equal(nthAddress(cidr("10.96.0.0/12"), 1), "10.96.0.1");
    assert.equal(nthAddress(cidr("10.96.0.0/12"), 10), "10.96.0.10");
    assert.equal(nthAddress(cidr("172.20.0.0/16"), 10), "172.20.0.10");
  });

  it("carries into higher octets and groups", () => {
    assert.equal(nthAddress(cidr("10.0.0.0/8"), 256), "10.0.1.0");
    assert.equal(nthAddress(cidr("10.0.0.0/8"), 65535), "10.0.255.255");
    assert.equal(nthAddress(cidr("2001:db8::/64"), 0x10000), "2001:db8::1:0");
  });

  it("gives IPv6 service addresses in canonical form", () => {
    assert.equal(nthAddress(cidr("fd00:10:96::/112"), 10), "fd00:10:96::a");
    assert.equal(nthAddress(cidr("fd00:10:96::/112"), 1), "fd00:10:96::1");
    assert.equal(nthAddress(cidr("::/64"), 10), "::a");
  });
});
