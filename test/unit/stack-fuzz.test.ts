/**
 * Fuzzing the stack file loader: whatever text it is given (mutations of a valid stack file, random bytes,
 * hostile YAML: alias bombs, custom tags, deep nesting, huge scalars, merge keys, duplicate keys), parseStack
 * either returns a validated stack or throws a StackValidationError whose every line reads
 * `file:line:col: path: message` — never another exception, never a hang. Seeded: a failure prints its seed and
 * input, and the same seed gives the same inputs.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseStack, StackValidationError } from "../../modules/stack";
import { stackYaml } from "../harness/stack-builder";

const FILE = "fuzz.yaml";
/** `  fuzz.yaml:3:7: machines[0].port: ...` (line and column absent for issues without a position). */
const ISSUE_LINE = /^ {2}fuzz\.yaml(:[0-9]+:[0-9]+)?: [^\n]*$/;

/** mulberry32: small, fast, and the same sequence for the same seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = [
  ":",
  "- ",
  "  ",
  "\n",
  "{",
  "}",
  "[",
  "]",
  "&a ",
  "*a",
  "!!str ",
  "!!binary ",
  "!custom ",
  "? ",
  "|",
  ">-",
  "#",
  "'",
  '"',
  "\\",
  "<<: *a",
  "~",
  "null",
  "true",
  "0x1F",
  "1e400",
  "-.inf",
  ".nan",
  "\t",
  "\u0000",
  "\u202e",
  "😀",
  "machines",
  "name",
  "address",
  "role",
  "hostKey",
  "ssh",
  "port",
  "cluster",
  "kubernetesVersion",
  "%YAML 1.2\n",
  "---\n",
  "...\n",
  "$(reboot)",
  "`id`",
  "; rm -rf /",
  "__proto__",
  "constructor",
  "prototype",
];

/** One mutation of `text`: delete, insert, duplicate or swap a slice, or splice in a YAML-significant piece. */
function mutate(text: string, next: () => number): string {
  const at = Math.floor(next() * (text.length + 1));
  const len = Math.floor(next() * 12);
  const piece = PIECES[Math.floor(next() * PIECES.length)] ?? "";
  switch (Math.floor(next() * 5)) {
    case 0:
      return text.slice(0, at) + text.slice(at + len);
    case 1:
      return text.slice(0, at) + piece + text.slice(at);
    case 2:
      return text.slice(0, at) + text.slice(at, at + len).repeat(2) + text.slice(at + len);
    case 3: {
      const lines = text.split("\n");
      const i = Math.floor(next() * lines.length);
      const j = Math.floor(next() * lines.length);
      [lines[i], lines[j]] = [lines[j] ?? "", lines[i] ?? ""];
      return lines.join("\n");
    }
    default:
      return text.slice(0, at) + piece + text.slice(at + len);
  }
}

/** Loads `text`; fails the test (with the seed and the input) on anything but a clean result or a clean error. */
function loadCleanly(text: string, seed: number | string): "valid" | "invalid" {
  const started = Date.now();
  let outcome: "valid" | "invalid";
  try {
    parseStack(text, FILE);
    outcome = "valid";
  } catch (error) {
    const where = `seed ${seed}, input ${JSON.stringify(text.slice(0, 2000))}`;
    assert.ok(error instanceof StackValidationError, `${where}: ${(error as Error)?.stack ?? String(error)}`);
    const [head, ...lines] = error.message.split("\n");
    assert.equal(head, "invalid stack file:", where);
    assert.ok(lines.length > 0, where);
    for (const line of lines) assert.match(line, ISSUE_LINE, where);
    outcome = "invalid";
  }
  assert.ok(Date.now() - started < 5000, `seed ${seed}: took ${Date.now() - started} ms`);
  return outcome;
}

describe("the stack file loader under fuzzing", () => {
  const valid = stackYaml({ machines: 3 });

  it("takes the unmutated file (the premise)", () => {
    assert.equal(loadCleanly(valid, "none"), "valid");
  });

  it("answers 3000 mutated stack files with a stack or a clean error", () => {
    const outcomes = { valid: 0, invalid: 0 };
    for (let seed = 1; seed <= 3000; seed++) {
      const next = random(seed);
      let text = valid;
      const rounds = 1 + Math.floor(next() * 6);
      for (let i = 0; i < rounds; i++) text = mutate(text, next);
      outcomes[loadCleanly(text, seed)] += 1;
    }
    // Both outcomes occur, so the mutations neither always break nor never touch the file.
    assert.ok(outcomes.valid > 0 && outcomes.invalid > 1000, JSON.stringify(outcomes));
  });

  it("answers 500 random byte strings with a clean error", () => {
    for (let seed = 1; seed <= 500; seed++) {
      const next = random(seed * 7919);
      const bytes = Buffer.from(Array.from({ length: Math.floor(next() * 400) }, () => Math.floor(next() * 256)));
      assert.equal(loadCleanly(bytes.toString("utf8"), `bytes-${seed}`), "invalid");
    }
  });

  it("answers hostile YAML with a clean error", () => {
    const bomb = [
      "a: &a [x, x, x, x, x, x, x, x, x]",
      ...Array.from(
        { length: 9 },
        (_, i) =>
          `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${`*${String.fromCharCode(97 + i)}, `.repeat(9)}x]`,
      ),
      "machines: *j",
    ].join("\n");
    const hostile: Record<string, string> = {
      "alias bomb": bomb,
      "self-referencing alias": "cluster: &c\n  name: *c\n",
      "JavaScript function tag": "cluster: !!js/function 'function () { process.exit(1) }'\n",
      "unknown tag": "cluster: !ruby/object:Gem::Installer\n  name: x\n",
      "deep nesting": `${"[".repeat(5000)}${"]".repeat(5000)}`,
      "deep mapping": Array.from({ length: 3000 }, (_, i) => `${" ".repeat(i)}k:`).join("\n"),
      "huge scalar": `cluster:\n  name: ${"a".repeat(2_000_000)}\n`,
      "merge keys": `base: &b\n  name: x\ncluster:\n  <<: *b\n  <<: *b\n`,
      "duplicate keys": `${valid}\ncluster:\n  name: again\n`,
      "__proto__ key": `__proto__:\n  polluted: true\n${valid}`,
      "many documents": `${valid}---\n${valid}`,
      "only a comment": "# nothing here\n",
      empty: "",
      "a list at the top": "- cluster\n- machines\n",
      "a scalar at the top": "hello\n",
      binary: "cluster: !!binary AAAA\n",
      "NUL bytes": `cluster:\n  name: a\u0000b\n`,
      "BOM and CRLF": `\ufeff${valid.replace(/\n/g, "\r\n")}`,
    };
    for (const [name, text] of Object.entries(hostile)) {
      const outcome = loadCleanly(text, name);
      if (name !== "BOM and CRLF") assert.equal(outcome, "invalid", name);
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined, "no prototype pollution");
  });
});
