/**
 * kubeadm init and join cut off part-way (killed, as a dropped SSH session or a reboot would leave them), with the
 * real kubeadm, kubelet and control plane v1.36.3 on real machines: the failed `pulumi up` names the step, and the
 * next one finishes what kubeadm had started instead of taking the leftovers for a finished init or join.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { planCluster } from "../../modules/plan";
import { parseStack } from "../../modules/stack";
import { KUBERNETES_BUILD_VERSION } from "../harness/kubernetes-build";
import { labClusterYaml, labStackYaml, setLabSiteNetwork } from "../harness/lab-stack";
import { useMachines, type Machine } from "../harness/machines";
import { inMachine, untilOutput } from "../harness/provision";
import { EngineError, engineStack, type EngineStack } from "../harness/pulumi-engine";

const KUBECTL = "kubectl --kubeconfig /etc/kubernetes/admin.conf";

/** Kills kubeadm in `machine` as soon as `path` exists: part-way through its work, whatever kubeadm does then. */
async function killKubeadmOnceExists(machine: Machine, path: string): Promise<void> {
  const watch = `until [ -e ${path} ]; do sleep 0.1; done; pkill -KILL -x kubeadm`;
  await inMachine(machine, `setsid sh -c '${watch}' </dev/null >/dev/null 2>&1 &`);
}

/** The failed run's error diagnostics, `resource: message` each. */
async function failedUp(engine: EngineStack): Promise<string[]> {
  const error = await engine.up().then(
    () => assert.fail("pulumi up should have failed"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof EngineError, String(error));
  return error.report.errors.filter((e) => e.name !== "").map((e) => `${e.name}: ${e.message}`);
}

describe(
  `kubeadm v${KUBERNETES_BUILD_VERSION} cut off part-way: the next pulumi up finishes it`,
  { timeout: 1_200_000 },
  () => {
    const lab = useMachines(2, { names: ["cp-1", "worker-1"], imageRegistry: true });
    let engine: EngineStack | undefined;
    let yaml = "";
    after(async () => {
      await engine?.remove();
    });
    const [cp, worker] = [(): Machine => lab().machines[0]!, (): Machine => lab().machines[1]!];

    test("kubeadm init killed once it has written admin.conf: up fails there; no stamp says it finished", async () => {
      yaml = labStackYaml(lab(), { kubernetesVersion: KUBERNETES_BUILD_VERSION, extra: labClusterYaml(lab()) });
      await setLabSiteNetwork(lab());
      engine = await engineStack(yaml, lab().clientPrivateKey);
      await killKubeadmOnceExists(cp(), "/etc/kubernetes/admin.conf");
      const errors = await failedUp(engine);
      assert.ok(
        errors.some((e) => e.startsWith("cp-1-kubeadm-init: cp-1: kubeadm-init: ")),
        errors.join("\n"),
      );
      // What the killed init left: its kubeconfigs and static pods, which an earlier nodeforge took for a finished
      // init (it checked admin.conf alone).
      await inMachine(cp(), "test -f /etc/kubernetes/admin.conf && test ! -e /var/lib/nodeforge/stamps/kubeadm-init");
    });

    test("the next up finishes init; the worker's join, killed during its TLS bootstrap, fails", async () => {
      await killKubeadmOnceExists(worker(), "/etc/kubernetes/bootstrap-kubelet.conf");
      const started = Date.now();
      const errors = await failedUp(engine ?? assert.fail("no stack: the first test failed"));
      console.log(`pulumi up resuming kubeadm init: ${((Date.now() - started) / 1000).toFixed(1)} s`);
      assert.ok(
        errors.some((e) => e.startsWith("worker-1-kubeadm-join: worker-1: kubeadm-join: ")),
        errors.join("\n"),
      );
      assert.equal((await inMachine(cp(), "cat /var/lib/nodeforge/stamps/kubeadm-init")).trim(), "complete");
      // kubeadm's last phases ran: the bootstrap token's RBAC (which joins need) and its addons.
      await inMachine(cp(), `${KUBECTL} get clusterrolebinding kubeadm:node-autoapprove-bootstrap >/dev/null`);
      await inMachine(cp(), `${KUBECTL} -n kube-system get deployment coredns >/dev/null`);
    });

    test("the next up finishes the join: both nodes Ready, kube-proxy on each", async () => {
      await (engine ?? assert.fail("no stack: the first test failed")).up();
      assert.equal((await inMachine(worker(), "cat /var/lib/nodeforge/stamps/kubeadm-join")).trim(), "complete");
      await untilOutput(
        cp(),
        `${KUBECTL} wait --for=condition=Ready node --all --timeout=5s >/dev/null && ${KUBECTL} get nodes -o name`,
        "every node Ready",
      );
      assert.deepEqual((await inMachine(cp(), `${KUBECTL} get nodes -o name`)).trim().split("\n"), [
        "node/cp-1",
        "node/worker-1",
      ]);
      await untilOutput(
        cp(),
        `${KUBECTL} -n kube-system get daemonset kube-proxy -o jsonpath='{.status.numberReady}' | grep -x 2`,
        "kube-proxy ready on both nodes",
      );
      // A further up has nothing left to do.
      await engine!.up({ expectNoChanges: true });
    });

    test("an init and a join finished without the stamp (an earlier nodeforge's): stamped, no kubeadm run", async () => {
      const steps = planCluster(parseStack(yaml, "lab.yaml"));
      const dir = mkdtempSync(join(tmpdir(), "nodeforge-resume-"));
      try {
        for (const [machine, step] of [
          [cp(), "kubeadm-init"],
          [worker(), "kubeadm-join"],
        ] as const) {
          const planned = steps.find((s) => s.id === `${machine.name}-${step}`) ?? assert.fail(`no ${step} planned`);
          const kubeletSince = "systemctl show kubelet.service -p ActiveEnterTimestampMonotonic";
          const since = await inMachine(machine, kubeletSince);
          await inMachine(machine, `rm /var/lib/nodeforge/stamps/${step}`);
          writeFileSync(join(dir, step), String(planned.script));
          machine.copyIn(join(dir, step), `/root/${step}.sh`);
          await inMachine(machine, `sh /root/${step}.sh && rm /root/${step}.sh`);
          assert.equal((await inMachine(machine, `cat /var/lib/nodeforge/stamps/${step}`)).trim(), "complete");
          // kubeadm restarts the kubelet in every init and join: the same start time means it did not run.
          assert.equal(await inMachine(machine, kubeletSince), since, `${machine.name}: the kubelet was restarted`);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);
