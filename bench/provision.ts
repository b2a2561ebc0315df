/**
 * Benchmark: `pulumi up` wall time on 1 and on 3 fresh systemd-nspawn machines (engine replayed as in the
 * integration tests), the 3/1 ratio (machines are provisioned in parallel, so the goal is at most 1.3), and
 * the SSH connections opened per machine. Prints figures; it is not a timed test.
 */
import { cpus } from "node:os";
import { closeAllSessions, sessionStats } from "../modules/remote";
import { destroy, emptyState, up } from "../test/harness/engine-replay";
import { startMachines, type Lab } from "../test/harness/machines";
import { captureLab, labStack } from "../test/harness/provision";

interface Run {
  machines: number;
  seconds: number;
  /** Sum of all operations' durations over the wall time: how many ran at once on average. */
  concurrency: number;
  fileConnections: number;
  commandConnections: number;
}

async function provision(lab: Lab): Promise<Run> {
  const state = emptyState();
  const program = await captureLab(lab, labStack(lab));
  const before = sessionStats().connects;
  const report = await up(program, state);
  console.log(`${lab.machines.length} machine(s): steps that took over 0.3 s (start -> end, seconds into the run)`);
  for (const o of report.operations.filter((o) => o.end - o.start > 0.3)) {
    console.log(`  ${o.name.padEnd(32)} ${o.start.toFixed(2).padStart(6)} -> ${o.end.toFixed(2).padStart(6)}`);
  }
  const run = {
    machines: lab.machines.length,
    seconds: report.seconds,
    concurrency: report.operations.reduce((sum, o) => sum + (o.end - o.start), 0) / report.seconds,
    fileConnections: sessionStats().connects - before,
    commandConnections: report.commandConnections,
  };
  await destroy(state);
  await closeAllSessions();
  return run;
}

async function main(): Promise<void> {
  const runs: Run[] = [];
  for (const count of [1, 3]) {
    const names = count === 1 ? ["cp-1"] : ["cp-1", "worker-1", "worker-2"];
    const lab = await startMachines(count, { names });
    try {
      runs.push(await provision(lab));
    } finally {
      await lab.stop();
    }
  }
  console.log("pulumi up on fresh machines (packages from the local apt mirror, binaries from the artifact mirror)");
  console.log(
    "machines  seconds  concurrency  SSH connections per machine: RemoteFile (pooled) + remote.Command (one per run)",
  );
  for (const r of runs) {
    const per = (n: number) => (n / r.machines).toFixed(1);
    console.log(
      `${String(r.machines).padStart(8)}  ${r.seconds.toFixed(2).padStart(7)}  ${r.concurrency.toFixed(2).padStart(11)}  ` +
        `${per(r.fileConnections)} + ${per(r.commandConnections)}`,
    );
  }
  const [one, three] = runs;
  if (one && three) {
    console.log(`ratio 3 machines / 1 machine: ${(three.seconds / one.seconds).toFixed(2)} (goal <= 1.3)`);
    // All test machines share this host's CPUs: package installs that run side by side compete for them.
    console.log(`host CPUs shared by all test machines: ${cpus().length}`);
  }
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
