import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { HostKeyMismatchError, hostKeyVerification, parseHostKey } from "../../modules/remote/host-key";

const dir = mkdtempSync(join(tmpdir(), "nodeforge-hostkey-"));
let generatedCount = 0;
after(() => rmSync(dir, { recursive: true, force: true }));

/** Generates a key with ssh-keygen; returns its public line and what `ssh-keygen -lf` says its fingerprint is. */
function generated(type: string, bits?: number): { line: string; fingerprint: string } {
  const file = join(dir, `${type}-${(generatedCount += 1)}`);
  const size = bits === undefined ? [] : ["-b", String(bits)];
  execFileSync("ssh-keygen", ["-q", "-t", type, ...size, "-N", "", "-C", "a comment", "-f", file]);
  const listed = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", `${file}.pub`], { encoding: "utf8" });
  return { line: readFileSync(`${file}.pub`, "utf8").trim(), fingerprint: listed.split(" ")[1] };
}

describe("parseHostKey", () => {
  const cases: [string, number | undefined, string][] = [
    ["ed25519", undefined, "ssh-ed25519"],
    ["ecdsa", 256, "ecdsa-sha2-nistp256"],
    ["ecdsa", 384, "ecdsa-sha2-nistp384"],
    ["ecdsa", 521, "ecdsa-sha2-nistp521"],
    ["rsa", 2048, "ssh-rsa"],
  ];
  for (const [type, bits, keyType] of cases) {
    test(`${keyType}: fingerprint matches ssh-keygen -lf`, () => {
      const key = generated(type, bits);
      assert.match(key.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
      const withComment = parseHostKey(key.line);
      const bare = parseHostKey(key.line.split(" ").slice(0, 2).join(" "));
      assert.equal(withComment.type, keyType);
      assert.equal(withComment.fingerprint, key.fingerprint);
      assert.equal(bare.fingerprint, key.fingerprint);
      assert.deepEqual(bare.blob, Buffer.from(key.line.split(" ")[1], "base64"));
    });
  }

  const ed25519 = generated("ed25519");
  const [, ed25519Data] = ed25519.line.split(" ");
  const blob = Buffer.from(ed25519Data, "base64");
  const garbage: [string, string, RegExp][] = [
    ["empty", "", /must be "<type> <base64>"/],
    ["type only", "ssh-ed25519", /must be "<type> <base64>"/],
    ["unsupported type", `ssh-dss ${ed25519Data}`, /ssh-dss.*not supported/],
    ["not base64", "ssh-ed25519 AAAA!!!!", /not valid base64/],
    ["bad base64 length", `ssh-ed25519 ${ed25519Data.slice(0, -1)}`, /not valid base64/],
    ["type disagrees with blob", `ssh-rsa ${ed25519Data}`, /declares type "ssh-ed25519", the line says ssh-rsa/],
    ["truncated blob", `ssh-ed25519 ${blob.subarray(0, blob.length - 4).toString("base64")}`, /not an SSH public key/],
    ["trailing bytes", `ssh-ed25519 ${Buffer.concat([blob, Buffer.alloc(4)]).toString("base64")}`, /32-byte/],
    [
      "random bytes",
      `ssh-ed25519 ${Buffer.from("hello world, not a key!!").toString("base64")}`,
      /not an SSH public key/,
    ],
    ["known_hosts line with host", `example.org ${ed25519.line}`, /"example.org" is not supported/],
  ];
  for (const [label, line, message] of garbage) {
    test(`rejects ${label}`, () => {
      assert.throws(() => parseHostKey(line), message);
    });
  }
});

describe("hostKeyVerification", () => {
  const pinned = generated("ed25519");
  const other = generated("ecdsa", 256);
  const rsa = generated("rsa", 2048);

  test("accepts exactly the pinned blob and restricts the algorithms to its type", () => {
    const verification = hostKeyVerification("cp-1", "10.0.0.5:22", pinned.line);
    assert.deepEqual(verification.options.algorithms.serverHostKey, ["ssh-ed25519"]);
    assert.equal(verification.options.hostVerifier(Buffer.from(pinned.line.split(" ")[1], "base64")), true);
    assert.equal(verification.mismatch(), undefined);
  });

  test("an RSA pin allows the SHA-2 signature algorithms first", () => {
    const verification = hostKeyVerification("cp-1", "10.0.0.5:22", rsa.line);
    assert.deepEqual(verification.options.algorithms.serverHostKey, ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]);
  });

  test("refuses another key and reports both fingerprints", () => {
    const verification = hostKeyVerification("cp-1", "10.0.0.5:22", pinned.line);
    assert.equal(verification.options.hostVerifier(Buffer.from(other.line.split(" ")[1], "base64")), false);
    const mismatch = verification.mismatch();
    assert.ok(mismatch instanceof HostKeyMismatchError);
    assert.equal(
      mismatch.message,
      `cp-1: host key mismatch for 10.0.0.5:22: expected ${pinned.fingerprint}, presented ${other.fingerprint} ` +
        "(ecdsa-sha2-nistp256); refusing to connect",
    );
  });
});
