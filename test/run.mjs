// Runs the compiled test files (build/test/<suite>/**/*.test.js) with Node's test runner.
// Usage: node test/run.mjs [unit|integration|upgrade ...]; no argument runs every suite, in that order: the upgrade
// suite last, since it needs the previous Kubernetes minor that .ci/run builds in the background meanwhile.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const suites = process.argv.slice(2);
const chosen = suites.length > 0 ? suites : ["unit", "integration", "upgrade"];

function collect(dir) {
  let files = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) files = files.concat(collect(path));
    else if (entry.endsWith(".test.js")) files.push(path);
  }
  return files;
}

const files = chosen.flatMap((suite) => collect(join("build", "test", suite)).sort());
if (files.length === 0) {
  console.error(`no test files found for: ${chosen.join(", ")}`);
  process.exit(1);
}
// Integration tests share machines (sshd ports, namespaces): run files one at a time.
const result = spawnSync(process.execPath, ["--test", "--test-concurrency=1", ...files], { stdio: "inherit" });
process.exit(result.status ?? 1);
