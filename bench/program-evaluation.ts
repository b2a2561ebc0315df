/**
 * Benchmark: evaluating the Pulumi program under mocks (stack file parse + validation + every resource
 * registered) for 10, 100 and 1000 machines. Each size runs in its own process so peak memory is its own.
 * Prints figures; it is not a timed test.
 */
import { spawnSync } from "node:child_process";
import * as pulumi from "@pulumi/pulumi";
import { Cluster } from "../modules/components";
import { captureProgram } from "../test/harness/pulumi-mocks";
import { stackYaml } from "../test/harness/stack-builder";
import { parseStack } from "../modules/stack";

const SIZES = [10, 100, 1000];

async function measure(machines: number): Promise<void> {
  const started = process.hrtime.bigint();
  const stack = parseStack(stackYaml({ machines }), `bench-${machines}.yaml`);
  const resources = await captureProgram((transformations) => {
    new Cluster("bench", { stack, secret: () => pulumi.secret("KEY") }, { transformations });
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const peakMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(JSON.stringify({ machines, resources: resources.length, seconds, peakMb }) + "\n");
}

function main(): void {
  const size = process.argv[2];
  if (size) {
    void measure(Number(size));
    return;
  }
  const rows: { machines: number; resources: number; seconds: number; peakMb: number }[] = [];
  for (const machines of SIZES) {
    const child = spawnSync(process.execPath, [__filename, String(machines)], { encoding: "utf8" });
    if (child.status !== 0) throw new Error(`bench for ${machines} machines failed:\n${child.stderr}`);
    rows.push(JSON.parse(child.stdout.trim().split("\n").pop() ?? "{}"));
  }
  console.log("program evaluation under Pulumi mocks (parse + validate + register every resource)");
  console.log("machines  resources  seconds  peak RSS MB  ms/machine");
  for (const r of rows) {
    console.log(
      `${String(r.machines).padStart(8)}  ${String(r.resources).padStart(9)}  ${r.seconds.toFixed(2).padStart(7)}  ` +
        `${r.peakMb.toFixed(0).padStart(11)}  ${((r.seconds * 1000) / r.machines).toFixed(2).padStart(10)}`,
    );
  }
  const [small, , large] = rows;
  if (small && large) {
    console.log(
      `growth 10 -> 1000 machines: time x${(large.seconds / small.seconds).toFixed(1)} (linear would be x100)`,
    );
  }
}

main();
