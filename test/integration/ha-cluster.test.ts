/**
 * A highly available control plane, for real (kubeadm v1.36.3 and every image built from Go modules, the real
 * engine): the stack's endpoint is an external TCP load balancer on the lab bridge (tcp-balancer.ts) over three
 * control-plane machines. The cluster starts with one control plane and a worker; the two other control planes are
 * added by a later `pulumi up`, as an operator adds them days later: they join with the CAs nodeforge writes, so no
 * certificates uploaded by `kubeadm init` (which kubeadm deletes after two hours) are needed, and none exist to
 * expire. Then the first control plane is cut off the network: the API still answers through the endpoint and a new
 * pod is scheduled and runs; back on the network it is Ready again.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { KUBERNETES_BUILD_VERSION } from "../harness/kubernetes-build";
import { labClusterYaml, labStackYaml, setLabSiteNetwork } from "../harness/lab-stack";
import { useMachines, type Machine } from "../harness/machines";
import { inMachine, untilOutput } from "../harness/provision";
import { engineStack, type EngineStack } from "../harness/pulumi-engine";
import { execChecked, ensureRootfs } from "../harness/rootfs";
import { startTcpBalancer, type TcpBalancer } from "../harness/tcp-balancer";
import { ensureTinyImage, TINY_IMAGE_REF } from "../harness/tiny-image";

const KUBECTL = "kubectl --kubeconfig /etc/kubernetes/admin.conf";
const CONTROL_PLANES = ["cp-1", "cp-2", "cp-3"];

describe(
  `an HA control plane behind a load balancer: kubeadm v${KUBERNETES_BUILD_VERSION}`,
  {
    timeout: 1_800_000,
  },
  () => {
    const lab = useMachines(4, { names: [...CONTROL_PLANES, "worker-1"], imageRegistry: true });
    let engine: EngineStack | undefined;
    let balancer: TcpBalancer | undefined;
    after(async () => {
      try {
        await engine?.remove();
      } finally {
        await balancer?.close();
      }
    });
    const machine = (name: string): Machine => lab().machines.find((m) => m.name === name) ?? assert.fail(name);

    /** The stack with these control planes (and worker-1), the balancer as its endpoint. */
    function stack(controlPlanes: string[]): string {
      const endpoint = balancer ?? assert.fail("no balancer");
      const machines = lab().machines.filter((m) => controlPlanes.includes(m.name) || m.name === "worker-1");
      return labStackYaml(
        { ...lab(), machines },
        {
          kubernetesVersion: KUBERNETES_BUILD_VERSION,
          cluster: [
            `controlPlaneEndpoint: "${endpoint.endpoint}"`,
            `controlPlaneLoadBalancer: { type: external, address: ${endpoint.address} }`,
          ],
          roles: Object.fromEntries(controlPlanes.map((name) => [name, "control-plane" as const])),
          extra: labClusterYaml(lab()),
        },
      );
    }

    test("one control plane and a worker behind the endpoint; nothing uploaded by kubeadm init", async () => {
      const backends = CONTROL_PLANES.map((name) => `${machine(name).address}:6443`);
      balancer = await startTcpBalancer(lab().network.hostAddress, backends);
      await lab().registry?.push((await ensureTinyImage(await ensureRootfs())).path, "nodeforge/tiny", "test");
      await setLabSiteNetwork(lab());
      engine = await engineStack(stack(["cp-1"]), lab().clientPrivateKey);
      await engine.up();
      const cp1 = machine("cp-1");
      await untilOutput(
        cp1,
        `${KUBECTL} wait --for=condition=Ready node --all --timeout=5s >/dev/null && echo ok`,
        "Ready",
      );
      // The kubeconfig's server is the endpoint: every kubectl call below goes through the balancer.
      assert.match(
        await inMachine(cp1, `${KUBECTL} config view -o jsonpath='{.clusters[0].cluster.server}'`),
        new RegExp(balancer.endpoint.replace(/\./g, "\\.")),
      );
      // What would expire two hours after init does not exist: the joins below cannot depend on it.
      const secret = await cp1.run(`${KUBECTL} -n kube-system get secret kubeadm-certs`);
      assert.notEqual(secret.code, 0);
      assert.match(secret.stderr, /NotFound/);
    });

    test("two control planes added later join with nodeforge's CAs; three etcd members", async () => {
      const pulumi = engine ?? assert.fail("no stack");
      // The operator's edit: two more control-plane machines in the stack file.
      pulumi.writeStackFile(stack(CONTROL_PLANES));
      const started = Date.now();
      await pulumi.up();
      console.log(`pulumi up adding two control planes: ${((Date.now() - started) / 1000).toFixed(1)} s`);
      const cp2 = machine("cp-2");
      await untilOutput(
        cp2,
        `${KUBECTL} wait --for=condition=Ready node --all --timeout=5s >/dev/null && echo ok`,
        "Ready",
      );
      assert.deepEqual((await inMachine(cp2, `${KUBECTL} get nodes -o name`)).trim().split("\n"), [
        "node/cp-1",
        "node/cp-2",
        "node/cp-3",
        "node/worker-1",
      ]);
      for (const name of CONTROL_PLANES) {
        await untilOutput(
          cp2,
          `${KUBECTL} -n kube-system get pod etcd-${name} -o jsonpath='{.status.containerStatuses[0].ready}' | grep -x true`,
          `etcd on ${name}`,
        );
      }
      // Each control plane that joined: kubeadm's certificates it made, read there.
      const expiry = (await pulumi.stack.outputs()).certificateExpiry?.value as Record<string, string>;
      for (const name of CONTROL_PLANES) {
        assert.ok(expiry[`${name}/apiserver`] && expiry[`${name}/etcd-server`], `${name}'s certificates read`);
      }
    });

    test("the first control plane cut off: the API answers through the endpoint, a new pod runs; back, it is Ready", async () => {
      const cp1 = machine("cp-1");
      const cp2 = machine("cp-2");
      const netns = lab().network.links[lab().machines.indexOf(cp1)]?.netns ?? assert.fail("no netns");
      await execChecked("ip", ["-n", netns, "link", "set", "eth0", "down"]);
      try {
        const pod = JSON.stringify({
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "during-outage", namespace: "default" },
          spec: { containers: [{ name: "c", image: TINY_IMAGE_REF, command: ["/bin/sh", "-c", "exec sleep 3600"] }] },
        });
        await untilOutput(
          cp2,
          `printf '%s' '${pod}' | ${KUBECTL} apply -f - >/dev/null && echo applied`,
          "the API through the endpoint",
          120,
        );
        await untilOutput(
          cp2,
          `${KUBECTL} get pod during-outage -o jsonpath='{.status.phase}' | grep -x Running`,
          "the new pod running",
        );
        // The cluster saw the outage: cp-1's kubelet stopped reporting (past the node lifecycle grace period).
        await untilOutput(
          cp2,
          `${KUBECTL} get node cp-1 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -x Unknown`,
          "cp-1 seen as down",
          180,
        );
      } finally {
        await execChecked("ip", ["-n", netns, "link", "set", "eth0", "up"]);
      }
      await untilOutput(
        cp2,
        `${KUBECTL} get node cp-1 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -x True`,
        "cp-1 Ready again",
      );
      await untilOutput(
        cp2,
        `${KUBECTL} -n kube-system get pod etcd-cp-1 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -x True`,
        "cp-1's etcd member back",
      );
    });
  },
);
