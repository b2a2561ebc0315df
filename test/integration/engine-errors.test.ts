/**
 * A bad stack file under the real engine (`pulumi preview` and `pulumi up` through the Automation API): the run
 * ends with exactly the `file:line:col: path: message` lines `nodeforge validate` prints for the same file, no
 * stack trace, and no resource touched (the machines' addresses are ones nothing answers on).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { EngineError, engineStack, type EngineStack } from "../harness/pulumi-engine";
import { stackYaml } from "../harness/stack-builder";

const CLI = join(__dirname, "..", "..", "modules", "cli", "main.js");

/** Two problems: a port out of range and an unknown role. */
function badYaml(): string {
  return stackYaml({ machines: 2 }).replace("role: worker", "role: wrker") + "ssh:\n  port: 70000\n";
}

/** What `nodeforge validate FILE` prints for the file, one issue per line. */
function validateLines(file: string): string[] {
  try {
    execFileSync(process.execPath, [CLI, "validate", file], { encoding: "utf8", stdio: "pipe" });
  } catch (error) {
    const { status, stdout, stderr } = error as { status: number; stdout: string; stderr: string };
    assert.equal(status, 2);
    return `${stdout}${stderr}`.split("\n").filter((line) => /:[0-9]+:[0-9]+: /.test(line));
  }
  return assert.fail("nodeforge validate accepted the bad file");
}

describe("a bad stack file under the real engine", { timeout: 300_000 }, () => {
  let engine: EngineStack | undefined;
  after(async () => {
    await engine?.remove();
  });

  test("preview and up end with nodeforge validate's lines, no stack trace, no resource", async () => {
    engine = await engineStack(badYaml(), "no key needed");
    const expected = validateLines(engine.stackFile);
    assert.equal(expected.length, 2, expected.join("\n"));
    for (const run of [() => engine!.preview(), () => engine!.up()]) {
      const failure = await run().then(
        () => assert.fail("a bad stack file was accepted"),
        (error: unknown) => error as EngineError,
      );
      assert.ok(failure instanceof EngineError, String(failure));
      const messages = failure.report.errors.map((e) => e.message).join("\n");
      for (const line of expected) assert.ok(messages.includes(line.trim()), `${line}\nin\n${messages}`);
      // A stack frame: a line of `at ...` (Node colours parts of it), or a source position in a .ts file.
      for (const text of [failure.report.output, messages]) {
        // eslint-disable-next-line no-control-regex -- Node's colours are ESC sequences
        assert.doesNotMatch(text, /^[\s\u001b[0-9;m]*at \S/m, "no stack trace");
        assert.doesNotMatch(text, /\.ts:[0-9]+:[0-9]+/, "no source position");
      }
      assert.deepEqual(
        failure.report.operations.filter((o) => o.type !== "pulumi:pulumi:Stack").map((o) => o.name),
        [],
      );
    }
  });
});
