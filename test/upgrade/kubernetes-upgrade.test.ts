/**
 * A real in-place upgrade, one minor: a cluster of one control plane and two workers built by `pulumi up` at
 * Kubernetes 1.35.8 (built from its Go module by .ci/install-previous-kubernetes, with the containerd its pins
 * name), then the stack file's kubernetesVersion changed to 1.36.3 and `pulumi up` again: kubeadm upgrade apply on
 * the control plane, the workers drained, upgraded and uncordoned one at a time. Throughout, a Deployment of two
 * replicas with a PodDisruptionBudget (minAvailable 1) is polled through its Service from the control plane:
 * every request must be answered. After: every Node's kubelet, the API server, the static pods, kube-proxy,
 * containerd and crictl at the new versions, nothing left cordoned, `pulumi preview --expect-no-changes`, and going
 * back refused at preview. Runs after the other suites: it waits for the previous minor's build that .ci/run
 * starts in the background.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { shellQuote } from "../../modules/render/shell";
import {
  ensurePreviousKubernetes,
  KUBERNETES_BUILD_VERSION,
  KUBERNETES_PREVIOUS_VERSION,
} from "../harness/kubernetes-build";
import { labClusterYaml, labStackYaml, setLabSiteNetwork } from "../harness/lab-stack";
import { useMachines, type Machine } from "../harness/machines";
import { inMachine, untilOutput } from "../harness/provision";
import { changed, EngineError, engineStack, type EngineStack } from "../harness/pulumi-engine";
import { ensureRootfs } from "../harness/rootfs";
import { ensureTinyImage, TINY_IMAGE_REF } from "../harness/tiny-image";
import { availabilityPoll, summarizePoll, webWorkload } from "../harness/availability";
import { literal } from "../harness/regexp";

const KUBECTL = "kubectl --kubeconfig /etc/kubernetes/admin.conf";
const WORKERS = ["worker-1", "worker-2"];
const NODES = ["cp-1", ...WORKERS];
const FROM = KUBERNETES_PREVIOUS_VERSION;
const TO = KUBERNETES_BUILD_VERSION;

describe(`a real upgrade: ${FROM} -> ${TO}, 1 control plane + 2 workers, a workload kept available`, () => {
  // Registered before the lab's hook: the lab's registry holds both versions' images, so both must be built.
  before(() => ensurePreviousKubernetes(console.log), { timeout: 3_600_000 });
  const lab = useMachines(3, { names: NODES, imageRegistry: true, kubernetesVersions: [FROM, TO] });
  let engine: EngineStack | undefined;
  after(async () => {
    await engine?.remove();
  });
  const cp = (): Machine => lab().machines[0]!;
  const kubectl = (args: string): Promise<string> => inMachine(cp(), `${KUBECTL} ${args}`);
  const stackYaml = (version: string): string =>
    labStackYaml(lab(), { kubernetesVersion: version, extra: labClusterYaml(lab()) });
  const versions = async (): Promise<string[]> =>
    (await kubectl(`get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.nodeInfo.kubeletVersion} {end}'`))
      .trim()
      .split(" ");

  test(`pulumi up at ${FROM}: every node Ready at ${FROM}`, { timeout: 900_000 }, async () => {
    const registry = lab().registry ?? assert.fail("no registry");
    await registry.push((await ensureTinyImage(await ensureRootfs())).path, "nodeforge/tiny", "test");
    await setLabSiteNetwork(lab());
    engine = await engineStack(stackYaml(FROM), lab().clientPrivateKey);
    const started = Date.now();
    await engine.up();
    console.log(`pulumi up at ${FROM}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await untilOutput(
      cp(),
      `${KUBECTL} wait --for=condition=Ready node --all --timeout=5s >/dev/null && echo ok`,
      "Ready",
    );
    assert.deepEqual(
      await versions(),
      NODES.map((node) => `${node}=v${FROM}`),
    );
  });

  test(
    `pulumi up at ${TO}: one node at a time, the workload answering throughout`,
    { timeout: 1_500_000 },
    async () => {
      await inMachine(cp(), `printf '%s' ${shellQuote(webWorkload(TINY_IMAGE_REF))} | ${KUBECTL} apply -f -`);
      await untilOutput(
        cp(),
        `${KUBECTL} get deployment web -o jsonpath='{.status.availableReplicas}' | grep -x 2`,
        "the web Deployment's two replicas available",
      );
      // One replica on each worker, so each drain evicts through the PodDisruptionBudget.
      const placed = await kubectl("get pods -l app=web -o jsonpath='{.items[*].spec.nodeName}'");
      assert.deepEqual(placed.trim().split(" ").sort(), ["worker-1", "worker-2"]);
      const serviceIp = (await kubectl("get service web -o jsonpath='{.spec.clusterIP}'")).trim();

      const expiry = async () => (await engine!.stack.outputs()).certificateExpiry?.value as Record<string, string>;
      const expiryBefore = await expiry();

      const poll = availabilityPoll(cp(), serviceIp, KUBECTL);
      await poll.started;
      engine!.writeStackFile(stackYaml(TO));
      const preview = await engine!.preview({ diff: true });
      console.log(
        `pulumi preview --diff of the version bump: ${preview.seconds.toFixed(1)} s: ${changed(preview).join(" ")}`,
      );
      // The rollout's order is the graph's: the preview lists the steps in it.
      const order = [
        ...preview.output.matchAll(
          /::(cp-1-kubernetes-upgrade|cp-1-cluster-network|cp-1-upgrade-(?:drain|uncordon)-worker-\d|worker-\d-kubernetes-upgrade)\]/g,
        ),
      ].map((m) => m[1]);
      assert.deepEqual(order, [
        "cp-1-kubernetes-upgrade",
        "cp-1-cluster-network",
        ...WORKERS.flatMap((w) => [`cp-1-upgrade-drain-${w}`, `${w}-kubernetes-upgrade`, `cp-1-upgrade-uncordon-${w}`]),
      ]);
      const started = Date.now();
      let upError: unknown;
      try {
        await engine!.up();
      } catch (error) {
        upError = error;
      }
      const upSeconds = (Date.now() - started) / 1000;
      const samples = await poll.stop();
      const summary = summarizePoll(samples, WORKERS);
      console.log(`pulumi up ${FROM} -> ${TO}: ${upSeconds.toFixed(1)} s; ${summary.text}`);
      if (upError) throw upError;
      assert.ok(summary.requests > 30, `only ${summary.requests} requests polled`);
      assert.deepEqual(summary.failures, [], "requests to the web Service that failed during the upgrade");
      assert.ok(summary.minReady >= 1, `the API reported ${summary.minReady} Ready replicas at one point`);
      assert.deepEqual(summary.emptiedNodes, WORKERS, "each worker's replica moved off it while it was drained");
      // kubeadm's upgrade renewed the control plane's certificates; the stack's output read them anew.
      const expiryAfter = await expiry();
      for (const name of ["cp-1/apiserver", "cp-1/etcd-server", "cp-1/admin.conf"]) {
        assert.ok(Date.parse(expiryAfter[name]!) > Date.parse(expiryBefore[name]!), `${name} renewed by the upgrade`);
      }
    },
  );

  test(`after: every component at ${TO}, nothing cordoned, nothing left to change`, async () => {
    assert.deepEqual(
      await versions(),
      NODES.map((node) => `${node}=v${TO}`),
    );
    const server = JSON.parse(await kubectl("version -o json")) as { serverVersion: { gitVersion: string } };
    assert.equal(server.serverVersion.gitVersion, `v${TO}`);
    const images = await kubectl(
      "-n kube-system get pods -o jsonpath='{range .items[*]}{.spec.containers[0].image}{\"\\n\"}{end}'",
    );
    for (const component of ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"]) {
      assert.match(images, new RegExp(`^registry\\.k8s\\.io/${component}:v${literal(TO)}$`, "m"));
      assert.doesNotMatch(images, new RegExp(`/${component}:v${literal(FROM)}$`, "m"));
    }
    assert.match(images, /^registry\.k8s\.io\/etcd:3\.6\.8-0$/m, "kubeadm's etcd of the new version");
    const cordoned = await kubectl(
      "get nodes -o jsonpath='{range .items[?(@.spec.unschedulable==true)]}{.metadata.name} {.metadata.annotations} {.spec.taints}{\"\\n\"}{end}'",
    );
    assert.equal(cordoned.trim(), "", "no node left cordoned");
    for (const machine of lab().machines) {
      const tools = await inMachine(machine, "kubelet --version; crictl --version; containerd --version");
      assert.match(tools, new RegExp(`^Kubernetes v${literal(TO)}$`, "m"), machine.name);
      assert.match(tools, /^crictl version v1\.36\.0$/m, machine.name);
      assert.match(tools, / v2\.3\.4 /, machine.name);
      const pending = await inMachine(machine, "ls /usr/local/bin/kubelet.nodeforge-upgrade 2>/dev/null || true");
      assert.equal(pending.trim(), "", `${machine.name}: no staged kubelet left`);
    }
    const started = Date.now();
    await engine!.preview({ expectNoChanges: true });
    console.log(
      `pulumi preview --expect-no-changes after the upgrade: ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  });

  test(`going back to ${FROM} is refused at preview, naming the versions allowed`, async () => {
    engine!.writeStackFile(stackYaml(FROM));
    const refused = await engine!.preview().then(
      () => assert.fail("a downgrade previewed"),
      (error: unknown) => error,
    );
    assert.ok(refused instanceof EngineError, String(refused));
    assert.match(refused.message, new RegExp(`kubernetesVersion.*'${literal(FROM)}'.*a downgrade`, "s"));
    engine!.writeStackFile(stackYaml(TO));
  });
});
