/**
 * nodeforge's policy pack (modules/policy-pack) under the real Pulumi CLI (`pulumi preview --policy-pack`, through
 * the Automation API, local file backend): a preview of a new stack, which needs no machine. A valid stack file
 * breaks no rule: the preview succeeds and the pack reports nothing. No valid stack file can break the rules (see
 * test/programs/policy-breaking), so the other stack is that program: nodeforge's own plan and executor with one flaw
 * for each rule; its preview fails, each rule reporting the machine and the step it found at fault.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { projectRoot } from "../../modules/project-root";
import { engineStack, type EngineStack } from "../harness/pulumi-engine";
import { stackYaml } from "../harness/stack-builder";

const PACK = join(projectRoot(), "modules", "policy-pack");
const FLAWED_PROGRAM = join(projectRoot(), "test", "programs", "policy-breaking");
const NO_KEY = "not a key: a preview of creates connects nowhere";

interface PolicyRun {
  /** Each violation as `<policy>: <message>` (the message: the policy's description, then what it found). */
  violations: string[];
  output: string;
  error?: Error;
  seconds: number;
}

async function previewWithPack(engine: EngineStack): Promise<PolicyRun> {
  const run: PolicyRun = { violations: [], output: "", seconds: 0 };
  const started = Date.now();
  run.error = await engine.stack
    .preview({
      policyPacks: [PACK],
      color: "never",
      onOutput: (text) => (run.output += text),
      onEvent: (event) => {
        const policy = event.policyEvent;
        if (policy) run.violations.push(`${policy.policyName}: ${policy.message}`);
      },
    })
    .then(
      () => undefined,
      (error: Error) => error,
    );
  run.seconds = (Date.now() - started) / 1000;
  return run;
}

/** What each rule must report of the flawed program's steps, by the policy's name. */
const EXPECTED: [string, RegExp][] = [
  ["host-keys-pinned", /worker-3: install-kubelet: no pinned host key/],
  ["secret-files-owner-only", /cp-1: kubeadm-init: \/etc\/kubernetes\/pki\/ca\.key holds a secret and its mode "0644"/],
  ["kubelet-anonymous-auth-off", /worker-2: configure-kubelet: \S+: authentication\.anonymous\.enabled is true/],
  [
    "kubelet-version-skew",
    /worker-2: kubelet 1\.32\.4 is more than 3 minor versions older than kube-apiserver 1\.36\.4/,
  ],
  ["kubelet-version-skew", /worker-3: kubelet 1\.37\.0 is newer than kube-apiserver 1\.36\.4/],
  ["odd-control-plane-count", /2 control-plane machines run stacked etcd \(cp-1, worker-1\)/],
];

describe("nodeforge's policy pack under the real Pulumi CLI", { timeout: 300_000 }, () => {
  const engines: EngineStack[] = [];
  after(async () => {
    for (const engine of engines) await engine.remove();
  });

  test("a valid stack file: the preview succeeds, no policy reports anything", async () => {
    const engine = await engineStack(stackYaml({ machines: 3 }), NO_KEY);
    engines.push(engine);
    const run = await previewWithPack(engine);
    console.log(`pulumi preview --policy-pack, 3 machines, no violation: ${run.seconds.toFixed(1)} s`);
    assert.deepEqual(run.violations, []);
    assert.equal(run.error, undefined, run.output);
    // The pack ran (a pack that does not start fails the preview): the CLI names it as passed.
    assert.match(run.output, /nodeforge@v0\.1\.0/);
  });

  test("nodeforge's steps with a flaw for each rule: the preview fails, every rule names what it found", async () => {
    const engine = await engineStack(
      stackYaml({ machines: 4, extra: "  controlPlaneEndpoint: 172.16.0.100" }),
      NO_KEY,
      {},
      FLAWED_PROGRAM,
    );
    engines.push(engine);
    const run = await previewWithPack(engine);
    console.log(`pulumi preview --policy-pack, 4 flawed machines: ${run.seconds.toFixed(1)} s`);
    const found = run.violations.join("\n");
    assert.ok(run.error, `the preview succeeded:\n${run.output}`);
    assert.match(run.error.message, /preview failed/);
    for (const [policy, message] of EXPECTED) {
      assert.ok(
        run.violations.some((v) => v.startsWith(`${policy}: `) && message.test(v)),
        `${policy}: ${message}\nin\n${found}`,
      );
      // The CLI's own output names the rule and what it found, as a user reads it.
      assert.match(run.output, new RegExp(`\\[mandatory\\]\\s+${policy}\\s`));
      assert.match(run.output, message);
    }
    // Only nodeforge's rules report, and only the flawed machines break the host key rule.
    const names = new Set(run.violations.map((v) => v.slice(0, v.indexOf(": "))));
    assert.deepEqual([...names].sort(), [...new Set(EXPECTED.map(([policy]) => policy))].sort());
    const unpinned = run.violations.filter((v) => v.startsWith("host-keys-pinned: ") && !/\nworker-3: /.test(v));
    assert.deepEqual(unpinned, []);
  });
});
