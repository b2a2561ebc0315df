/**
 * Benchmark: evaluating the Pulumi program under mocks (stack file parse + validation + plan + every resource
 * registered) for 10, 100 and 1000 machines, each beside a bare program registering the same number of plain
 * resources (bench/bare-program.ts). Each run is a process of its own, so peak memory is its own. Prints figures;
 * it is not a timed test.
 */
import { spawnSync } from "node:child_process";
import * as pulumi from "@pulumi/pulumi";
import { Cluster } from "../modules/components";
import { parseStack } from "../modules/stack";
import { captureProgram } from "../test/harness/pulumi-mocks";
import { stackYaml } from "../test/harness/stack-builder";
import { registerBare } from "./bare-program";

const SIZES = [10, 100, 1000];

interface Row {
  resources: number;
  seconds: number;
  peakMb: number;
}

async function measure(kind: string, size: number): Promise<void> {
  const started = process.hrtime.bigint();
  const resources = await captureProgram((transformations) => {
    if (kind === "nodeforge") {
      const stack = parseStack(stackYaml({ machines: size }), `bench-${size}.yaml`);
      new Cluster("bench", { stack, secret: () => pulumi.secret("KEY") }, { transformations });
    } else registerBare(size, { transformations });
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const peakMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(JSON.stringify({ resources: resources.length, seconds, peakMb }) + "\n");
}

function run(kind: string, size: number): Row {
  const child = spawnSync(process.execPath, [__filename, kind, String(size)], { encoding: "utf8" });
  if (child.status !== 0) throw new Error(`${kind} ${size} failed:\n${child.stderr}`);
  return JSON.parse(child.stdout.trim().split("\n").pop() ?? "{}") as Row;
}

function main(): void {
  const [kind, size] = process.argv.slice(2);
  if (kind && size) {
    void measure(kind, Number(size));
    return;
  }
  console.log("program evaluation under Pulumi mocks: nodeforge (parse, validate, plan, register) vs a bare program");
  console.log("registering as many plain resources; each its own process");
  console.log("machines  resources  nodeforge s  peak MB  bare s  peak MB  time ratio  ms/machine");
  for (const machines of SIZES) {
    const ours = run("nodeforge", machines);
    const bare = run("bare", ours.resources);
    console.log(
      `${String(machines).padStart(8)}  ${String(ours.resources).padStart(9)}  ${ours.seconds.toFixed(2).padStart(11)}  ` +
        `${ours.peakMb.toFixed(0).padStart(7)}  ${bare.seconds.toFixed(2).padStart(6)}  ${bare.peakMb.toFixed(0).padStart(7)}  ` +
        `${(ours.seconds / bare.seconds).toFixed(2).padStart(10)}  ${((ours.seconds * 1000) / machines).toFixed(2).padStart(10)}`,
    );
  }
}

main();
