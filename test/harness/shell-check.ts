/** Checks of a rendered shell script shared by the tests: what POSIX sh tooling says of it. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

/** shellcheck (POSIX sh, down to style level) and dash -n accept the script. Both must be installed: never skipped. */
export function assertCleanShell(name: string, script: string): void {
  const check = spawnSync("shellcheck", ["-s", "sh", "-S", "style", "-"], { input: script, encoding: "utf8" });
  assert.equal(
    check.error,
    undefined,
    `shellcheck must be installed (bash .ci/install-packages): ${String(check.error)}`,
  );
  assert.equal(check.stdout + check.stderr, "", `${name}: shellcheck findings`);
  assert.equal(check.status, 0, name);
  const dash = spawnSync("dash", ["-n"], { input: script, encoding: "utf8" });
  assert.equal(dash.error, undefined, `dash must be installed: ${String(dash.error)}`);
  assert.deepEqual([dash.status, dash.stderr], [0, ""], `${name}: dash -n`);
}
