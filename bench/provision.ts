/**
 * Benchmark: the real `pulumi up` (Pulumi CLI through the Automation API, this project's index.ts) on 1 and on 3
 * fresh systemd-nspawn machines, then `pulumi preview` and a no-op `pulumi up`, with the SSH logins each machine's
 * sshd accepted. Baseline measured in the same run, on the same machines after a destroy: the very same step
 * scripts (`nodeforge render`) run by plain `ssh`, one machine after another step by step, all machines in
 * parallel. Prints figures; it is not a timed test.
 */
import { spawn } from "node:child_process";
import { cpus } from "node:os";
import { planMachine } from "../modules/steps/plan";
import { parseStack } from "../modules/stack";
import { labStackYaml } from "../test/harness/lab-stack";
import { startMachines, type Lab, type Machine } from "../test/harness/machines";
import { engineStack } from "../test/harness/pulumi-engine";

interface Run {
  machines: number;
  up: number;
  preview: number;
  noop: number;
  /** SSH logins per machine during up, and during the no-op up. */
  upLogins: number;
  noopLogins: number;
  plainSsh: number;
}

async function logins(machine: Machine): Promise<number> {
  const result = await machine.run("journalctl -q -o cat -u ssh.service --no-pager | grep -c 'Accepted publickey'");
  return Number(result.stdout.trim() || "0");
}

async function totalLogins(lab: Lab): Promise<number> {
  return (await Promise.all(lab.machines.map(logins))).reduce((a, b) => a + b, 0);
}

function sshRun(lab: Lab, machine: Machine, script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("ssh", [...lab.sshArgs(machine), "/bin/sh -s"], { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`${machine.name}: ${stderr.trim()}`))));
    child.stdin.end(script);
  });
}

/** The node steps' files and scripts through plain ssh: what nodeforge's own work costs without Pulumi. */
async function plainSsh(lab: Lab, yaml: string): Promise<number> {
  const spec = parseStack(yaml, "bench.yaml");
  const started = Date.now();
  await Promise.all(
    spec.machines.map(async (machineSpec, i) => {
      const machine = lab.machines[i]!;
      for (const planned of planMachine(spec, machineSpec)) {
        const writes = planned.files.map(
          (f) =>
            `mkdir -p "$(dirname '${f.path}')" && cat > '${f.path}' <<'NODEFORGE_EOF'\n${String(f.content)}\nNODEFORGE_EOF\nchmod ${f.mode} '${f.path}'`,
        );
        await sshRun(lab, machine, [...writes, planned.script].join("\n"));
      }
    }),
  );
  return (Date.now() - started) / 1000;
}

async function measure(count: number): Promise<Run> {
  const names = ["cp-1", "worker-1", "worker-2"].slice(0, count);
  const lab = await startMachines(count, { names });
  try {
    const yaml = labStackYaml(lab);
    const engine = await engineStack(yaml, lab.clientPrivateKey);
    try {
      const before = await totalLogins(lab);
      const up = await engine.up();
      const afterUp = await totalLogins(lab);
      const preview = await engine.preview();
      const noop = await engine.up();
      const afterNoop = await totalLogins(lab);
      await engine.destroy();
      const baseline = await plainSsh(lab, yaml);
      return {
        machines: count,
        up: up.seconds,
        preview: preview.seconds,
        noop: noop.seconds,
        upLogins: (afterUp - before) / count,
        noopLogins: (afterNoop - afterUp) / count,
        plainSsh: baseline,
      };
    } finally {
      await engine.remove();
    }
  } finally {
    await lab.stop();
  }
}

async function main(): Promise<void> {
  const runs: Run[] = [];
  for (const count of [1, 3]) runs.push(await measure(count));
  console.log("fresh machines, packages from the local apt mirror, binaries from the artifact mirror");
  console.log(
    "machines  pulumi up (s)  plain ssh, node steps (s)  preview (s)  no-op up (s)  SSH logins/machine: up, no-op",
  );
  for (const r of runs) {
    console.log(
      `${String(r.machines).padStart(8)}  ${r.up.toFixed(1).padStart(13)}  ${r.plainSsh.toFixed(1).padStart(25)}  ` +
        `${r.preview.toFixed(1).padStart(11)}  ${r.noop.toFixed(1).padStart(12)}  ${r.upLogins.toFixed(1)}, ${r.noopLogins.toFixed(1)}`,
    );
  }
  // pulumi up also bootstraps the cluster (kubeadm, kube-proxy), which the plain-ssh baseline does not run.
  console.log(`host CPUs shared by all test machines: ${cpus().length}`);
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
