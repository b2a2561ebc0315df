/**
 * Benchmark: the real `pulumi up` (Pulumi CLI through the Automation API, this project's index.ts) on 1 and on 3
 * fresh systemd-nspawn machines, then `pulumi preview` and a no-op `pulumi up`, with the SSH logins each machine's
 * sshd accepted. Baseline measured in the same run, on the same machines after a destroy: the very same plan (every
 * step's files and script, what `nodeforge render` writes) run by plain `ssh`, each step once the steps it comes
 * after are done, machines in parallel; and a bare Pulumi program's `pulumi up` creating as many resources that do
 * nothing, the floor any Pulumi program pays here. Prints figures; it is not a timed test.
 */
import { spawn } from "node:child_process";
import { cpus } from "node:os";
import assert from "node:assert/strict";
import {
  fileContent,
  generateClusterSecrets,
  planCluster,
  scriptText,
  usesSecrets,
  type ClusterSecrets,
  type PlannedStep,
} from "../modules/plan";
import { shellQuote } from "../modules/render/shell";
import { parseStack } from "../modules/stack";
import { labStackYaml } from "../test/harness/lab-stack";
import { startMachines, type Lab, type Machine } from "../test/harness/machines";
import { changed, engineStack } from "../test/harness/pulumi-engine";
import { seconds, withBareStack } from "./bare-project";

interface Run {
  machines: number;
  up: number;
  preview: number;
  noop: number;
  /** SSH logins per machine during up, and during the no-op up. */
  upLogins: number;
  noopLogins: number;
  plainSsh: number;
  /** A bare program's `pulumi up` creating as many resources that do nothing: what Pulumi itself costs. */
  floor: number;
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

/** One planned step as one shell script for plain ssh: its files written (base64, so any content), then its script. */
function plainStepScript(step: PlannedStep, secrets: ClusterSecrets | undefined): string {
  const known = (what: string): ClusterSecrets => secrets ?? assert.fail(`${step.id}: ${what} needs the secrets`);
  const writes = step.files.map((f) => {
    const content = "text" in f.content ? f.content.text : fileContent(f, known(f.path));
    const path = shellQuote(f.path);
    return [
      `mkdir -p "$(dirname ${path})"`,
      `printf %s ${shellQuote(Buffer.from(content).toString("base64"))} | base64 -d > ${path}`,
      `chown ${shellQuote(`${f.owner}:${f.group}`)} ${path} && chmod ${f.mode} ${path}`,
    ].join("\n");
  });
  const script = typeof step.script === "string" ? step.script : scriptText(step.script, known("its script"));
  const file = `/root/nodeforge-bench-${step.id}.sh`;
  return [
    "set -e",
    ...writes,
    `printf %s ${shellQuote(Buffer.from(script).toString("base64"))} | base64 -d > ${file}`,
    `sh ${file} </dev/null && rm -f ${file}`,
  ].join("\n");
}

/**
 * The very same plan (every step: node steps, kubeadm, joins, registrations, the cluster network) run by plain ssh,
 * each step as soon as the steps it comes after are done, machines in parallel: what nodeforge's own work costs
 * without Pulumi.
 */
async function plainSsh(lab: Lab, yaml: string): Promise<number> {
  const spec = parseStack(yaml, "bench.yaml");
  const plan = planCluster(spec);
  const secrets = plan.some(usesSecrets) ? generateClusterSecrets(spec) : undefined;
  const machineOf = new Map(spec.machines.map((m, i) => [m.name, lab.machines[i]!]));
  const started = Date.now();
  const done = new Map<string, Promise<void>>();
  for (const step of plan) {
    const before = Promise.all(step.after.map((id) => done.get(id) ?? assert.fail(`${step.id} after ${id}`)));
    const machine = machineOf.get(step.machine) ?? assert.fail(`no lab machine for ${step.machine}`);
    done.set(
      step.id,
      before.then(() => sshRun(lab, machine, plainStepScript(step, secrets))),
    );
  }
  await Promise.all(done.values());
  return (Date.now() - started) / 1000;
}

async function measure(count: number): Promise<Run> {
  const names = ["cp-1", "worker-1", "worker-2"].slice(0, count);
  let result: Omit<Run, "plainSsh" | "floor">;
  let resources = 0;
  const lab = await startMachines(count, { names });
  try {
    const engine = await engineStack(labStackYaml(lab), lab.clientPrivateKey);
    try {
      resources = changed(await engine.preview()).length;
      const before = await totalLogins(lab);
      const up = await engine.up();
      const afterUp = await totalLogins(lab);
      const preview = await engine.preview();
      const noop = await engine.up();
      const afterNoop = await totalLogins(lab);
      await engine.destroy();
      result = {
        machines: count,
        up: up.seconds,
        preview: preview.seconds,
        noop: noop.seconds,
        upLogins: (afterUp - before) / count,
        noopLogins: (afterNoop - afterUp) / count,
      };
    } finally {
      await engine.remove();
    }
  } finally {
    await lab.stop();
  }
  const floor = await withBareStack(resources, 0, (stack) => seconds(() => stack.up({ color: "never" })));
  // The baseline on fresh machines too (the same names and addresses), after the run above warmed the host's caches.
  const fresh = await startMachines(count, { names });
  try {
    return { ...result, floor, plainSsh: await plainSsh(fresh, labStackYaml(fresh)) };
  } finally {
    await fresh.stop();
  }
}

async function main(): Promise<void> {
  const runs: Run[] = [];
  for (const count of [1, 3]) runs.push(await measure(count));
  console.log("fresh machines, packages from the local apt mirror, binaries from the artifact mirror");
  console.log(
    "machines  pulumi up (s)  plain ssh (s)  ratio  Pulumi floor (s)  (up - floor) / plain ssh  preview (s)  " +
      "no-op up (s)  SSH logins/machine: up, no-op",
  );
  for (const r of runs) {
    console.log(
      `${String(r.machines).padStart(8)}  ${r.up.toFixed(1).padStart(13)}  ${r.plainSsh.toFixed(1).padStart(13)}  ` +
        `${(r.up / r.plainSsh).toFixed(2).padStart(5)}  ${r.floor.toFixed(1).padStart(16)}  ` +
        `${((r.up - r.floor) / r.plainSsh).toFixed(2).padStart(24)}  ` +
        `${r.preview.toFixed(1).padStart(11)}  ${r.noop.toFixed(1).padStart(12)}  ${r.upLogins.toFixed(1)}, ${r.noopLogins.toFixed(1)}`,
    );
  }
  console.log("Pulumi floor: a bare program's pulumi up creating as many resources that do nothing (no SSH)");
  console.log(`host CPUs shared by all test machines: ${cpus().length}`);
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
