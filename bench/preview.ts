/**
 * Benchmark: a real `pulumi preview` (the Pulumi CLI through the Automation API, local file backend) of a
 * 100-machine stack file with this project's index.ts, beside the same CLI previewing a bare TypeScript program
 * that registers as many plain resources (bench/bare-program.ts), run the same way (built JavaScript); and beside
 * the bare program again with each resource carrying as many bytes as an average step (files, scripts) and a secret
 * the size of an SSH target: the part of the bill that is the data a preview must show, not nodeforge. No machine
 * is needed: a preview of a stack never deployed only plans creates. Prints figures; it is not a timed test.
 */
import { planCluster } from "../modules/plan";
import { changed, engineStack } from "../test/harness/pulumi-engine";
import { buildStack, stackYaml } from "../test/harness/stack-builder";
import { seconds, withBareStack } from "./bare-project";

const MACHINES = 100;

/** The average size of a planned step (its files, scripts and metadata as JSON): what a step resource carries. */
function stepBytes(machines: number): number {
  const steps = planCluster(buildStack({ machines }));
  const total = steps.reduce((sum, step) => sum + JSON.stringify(step).length, 0);
  return Math.round(total / steps.length);
}

/** A real preview of the bare program with `count` resources each carrying `payloadBytes`. */
function barePreview(count: number, payloadBytes: number): Promise<number> {
  return withBareStack(count, payloadBytes, (stack) => seconds(() => stack.preview({ color: "never" })));
}

async function main(): Promise<void> {
  const engine = await engineStack(
    stackYaml({ machines: MACHINES }),
    "not a key: a preview of creates connects nowhere",
  );
  try {
    const ours = await engine.preview();
    const resources = changed(ours).length;
    const bare = await barePreview(resources, 0);
    const bytes = stepBytes(MACHINES);
    const carrying = await barePreview(resources, bytes);
    console.log(`real pulumi preview, local backend, ${MACHINES}-machine stack (every resource a create)`);
    console.log("program                                  resources  seconds  nodeforge / it");
    const row = (name: string, seconds: number) =>
      console.log(
        `${name.padEnd(40)} ${String(resources).padStart(9)}  ${seconds.toFixed(1).padStart(7)}  ` +
          `${(ours.seconds / seconds).toFixed(2).padStart(14)}`,
      );
    row("nodeforge", ours.seconds);
    row("bare (one small input each)", bare);
    row(`bare carrying ${bytes} bytes each`, carrying);
  } finally {
    await engine.remove();
  }
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
