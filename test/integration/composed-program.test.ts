/**
 * nodeforge's Cluster in a Pulumi program of its own (test/programs/composed), under the real Pulumi CLI: the
 * machines' addresses and host keys are outputs of other resources of that program, known only once those exist.
 * A preview of the new stack plans every step with those values unknown; `pulumi up` makes the two lab machines a
 * control plane and a worker with their real addresses in their files; nothing changes after; destroy leaves
 * nothing.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { projectRoot } from "../../modules/project-root";
import { planCluster } from "../../modules/plan";
import { parseStack } from "../../modules/stack";
import { labStackYaml } from "../harness/lab-stack";
import { useMachines } from "../harness/machines";
import { inMachine } from "../harness/provision";
import { changed, engineStack, type EngineStack } from "../harness/pulumi-engine";

const PROGRAM = join(projectRoot(), "test", "programs", "composed");
const KUBELET_ENV = "/etc/kubernetes/nodeforge-kubelet.env";

describe(
  "a Cluster composed in another Pulumi program, addresses from other resources' outputs",
  { timeout: 900_000 },
  () => {
    const lab = useMachines(2, { names: ["cp-1", "worker-1"] });
    let engine: EngineStack | undefined;
    after(async () => {
      await engine?.remove();
    });

    test("a lease that hands out a bad address: up fails naming it, no machine is touched", async () => {
      const bad = labStackYaml(lab()).replace(`address: ${lab().machines[1]!.address}`, "address: no such address");
      const refused = await engineStack(bad, lab().clientPrivateKey, {}, PROGRAM);
      try {
        await assert.rejects(refused.up(), (error: Error) => {
          assert.match(
            error.message,
            /Cluster composed:\d+:\d+: machines\[1\]\.address: "no such address" must be an IPv4 address/,
          );
          return true;
        });
        for (const machine of lab().machines) {
          assert.equal(await inMachine(machine, "[ ! -e /var/lib/nodeforge ] && echo untouched"), "untouched\n");
        }
      } finally {
        await refused.destroy();
        await refused.remove();
      }
    });

    test("preview plans every step before the addresses are known; up provisions with the real ones", async () => {
      const yaml = labStackYaml(lab());
      engine = await engineStack(yaml, lab().clientPrivateKey, {}, PROGRAM);
      const steps = planCluster(parseStack(yaml, "lab.yaml")).map((step) => `${step.id}:create`);
      const preview = await engine.preview();
      const planned = changed(preview);
      for (const step of steps) assert.ok(planned.includes(step), `${step} is planned: ${planned.join(", ")}`);
      assert.ok(planned.includes("cp-1-lease:create") && planned.includes("worker-1-lease:create"));

      const up = await engine.up();
      console.log(`pulumi up of the composed program, 2 machines: ${up.seconds.toFixed(1)} s`);
      for (const machine of lab().machines) {
        // The kubelet's node IP is the address the lease handed out, not a stand-in.
        assert.match(await inMachine(machine, `cat ${KUBELET_ENV}`), new RegExp(`--node-ip=${machine.address}\\b`));
        assert.equal((await inMachine(machine, "systemctl is-active containerd.service")).trim(), "active");
      }
      const init = await inMachine(lab().machines[0]!, "cat /etc/kubernetes/nodeforge/kubeadm-init.yaml");
      assert.ok(init.includes(`"${lab().machines[0]!.address}"`), "kubeadm's configuration names the real address");
      assert.doesNotMatch(init, /198\.18\./, "no stand-in address reached a machine");
      const outputs = await engine.stack.outputs();
      assert.equal(outputs.apiEndpoint?.value, `https://${lab().machines[0]!.address}:6443`);
      assert.deepEqual(
        (outputs.nodes?.value as { address: string }[]).map((n) => n.address),
        lab().machines.map((m) => m.address),
      );
      await engine.preview({ expectNoChanges: true });
    });

    test("destroy removes what it made", async () => {
      await engine!.destroy();
      for (const machine of lab().machines) {
        assert.equal(
          await inMachine(machine, `[ ! -e ${KUBELET_ENV} ] && [ ! -e /usr/local/bin/kubelet ] && echo gone`),
          "gone\n",
        );
      }
    });
  },
);
