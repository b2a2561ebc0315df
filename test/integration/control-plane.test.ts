/**
 * A real control plane: `pulumi up` (the real engine) on a bare machine runs the real kubeadm init (v1.36.3,
 * built from the Kubernetes Go module like the kubelet, kubectl and the control-plane images), whose static pods
 * (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) are pulled by containerd from the lab's image
 * registry through nodeforge's registry mirror for registry.k8s.io, as an air-gapped site's would be. Then the API
 * answers, the node registers, nodeforge's kube-proxy DaemonSet runs, and with a pod network the node is Ready,
 * kubeadm's CoreDNS serves, and a pod resolves the API's Service by its DNS name.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { KUBERNETES_BUILD_VERSION } from "../harness/kubernetes-build";
import { labStackYaml } from "../harness/lab-stack";
import { useMachines, type Machine } from "../harness/machines";
import { inMachine } from "../harness/provision";
import { engineStack, type EngineStack } from "../harness/pulumi-engine";
import { ensureRootfs } from "../harness/rootfs";
import { ensureTinyImage, TINY_IMAGE_REF } from "../harness/tiny-image";

const KUBECTL = "kubectl --kubeconfig /etc/kubernetes/admin.conf";

/** The pod network a CNI plugin's installer would write (cni: none here): the reference plugins nodeforge installed. */
const CONFLIST = JSON.stringify({
  cniVersion: "1.0.0",
  name: "lab",
  plugins: [
    {
      type: "bridge",
      bridge: "cni-lab0",
      isGateway: true,
      ipMasq: true,
      ipam: { type: "host-local", ranges: [[{ subnet: "10.244.0.0/24" }]], routes: [{ dst: "0.0.0.0/0" }] },
    },
    { type: "portmap", capabilities: { portMappings: true } },
  ],
});

/** A pod that asks the cluster's DNS for the API's Service, on the control-plane node (tolerating its taint). */
const DNS_POD = JSON.stringify({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name: "dns-check", namespace: "default" },
  spec: {
    tolerations: [{ key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" }],
    restartPolicy: "Never",
    containers: [
      {
        name: "dns-check",
        image: TINY_IMAGE_REF,
        imagePullPolicy: "Never",
        command: ["/bin/sh", "-c", "nslookup kubernetes.default.svc.cluster.local"],
      },
    ],
  },
});

async function until(machine: Machine, command: string, what: string, seconds = 180): Promise<string> {
  let last = "";
  for (let waited = 0; waited < seconds; waited += 2) {
    const result = await machine.run(command);
    if (result.code === 0 && result.stdout.trim() !== "") return result.stdout;
    last = result.stdout + result.stderr;
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
  return assert.fail(`${machine.name}: ${what} within ${seconds} s; last output:\n${last}`);
}

describe(`a real kubeadm control plane v${KUBERNETES_BUILD_VERSION}`, { timeout: 1_200_000 }, () => {
  const lab = useMachines(1, { names: ["cp-1"], imageRegistry: true });
  let engine: EngineStack | undefined;
  after(async () => {
    await engine?.remove();
  });
  const machine = (): Machine => lab().machines[0]!;

  test("pulumi up from a bare machine: kubeadm init, the API answers, the node registers", async () => {
    const registry = lab().registry ?? assert.fail("no registry");
    const yaml = labStackYaml(lab(), {
      kubernetesVersion: KUBERNETES_BUILD_VERSION,
      extra:
        "kubelet:\n  failCgroupV1: false\n" +
        // The node is a container: the host's conntrack table size is not kube-proxy's to set.
        "kubeProxy:\n  conntrackMaxPerCore: 0\n" +
        "containerd:\n  restrictOOMScoreAdj: true\n" +
        `  registryMirrors:\n    registry.k8s.io: ["http://${registry.host}"]\n`,
    });
    // CoreDNS forwards what is not the cluster's to the node's resolvers and refuses to start without one: like any
    // site's machine, the lab's names one (the host; nothing answers there, no name outside the cluster resolves).
    await inMachine(machine(), `printf 'nameserver %s\\n' ${lab().network.hostAddress} > /etc/resolv.conf`);
    engine = await engineStack(yaml, lab().clientPrivateKey);
    const started = Date.now();
    try {
      await engine.up();
    } finally {
      console.log(`pulumi up, 1 control plane: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    assert.match(await inMachine(machine(), "kubeadm version -o short"), new RegExp(`^v${KUBERNETES_BUILD_VERSION}`));
    const version = JSON.parse(await inMachine(machine(), `${KUBECTL} version -o json`)) as {
      serverVersion: { gitVersion: string };
    };
    assert.equal(version.serverVersion.gitVersion, `v${KUBERNETES_BUILD_VERSION}`);
    const nodes = await until(machine(), `${KUBECTL} get nodes -o name`, "the node registered");
    assert.equal(nodes.trim(), "node/cp-1");
    // The control plane's static pods run, pulled through the mirror from the lab's registry.
    for (const component of ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]) {
      await until(
        machine(),
        `${KUBECTL} -n kube-system get pod ${component}-cp-1 -o jsonpath='{.status.containerStatuses[0].ready}' | grep -x true`,
        `${component} ready`,
      );
    }
  });

  test("kube-proxy: nodeforge's DaemonSet runs in iptables mode, from the lab registry's image", async () => {
    await until(
      machine(),
      `${KUBECTL} -n kube-system get daemonset kube-proxy -o jsonpath='{.status.numberReady}' | grep -x 1`,
      "kube-proxy ready on the node",
    );
    // kube-proxy programmed the API's Service into the kernel.
    await until(machine(), "iptables -t nat -S KUBE-SERVICES | grep -F 10.96.0.1/32", "the kubernetes Service's rules");
  });

  test("with a pod network: the node is Ready, CoreDNS serves, a pod resolves the API's Service", async () => {
    const tiny = await ensureTinyImage(await ensureRootfs());
    machine().copyIn(tiny.path, "/var/tmp/tiny.tar");
    await inMachine(machine(), "ctr -n k8s.io image import /var/tmp/tiny.tar >/dev/null && rm /var/tmp/tiny.tar");
    await inMachine(machine(), `mkdir -p /etc/cni/net.d && printf '%s' '${CONFLIST}' > /etc/cni/net.d/10-lab.conflist`);
    await until(
      machine(),
      `${KUBECTL} get node cp-1 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -x True`,
      "the node Ready",
    );
    await until(
      machine(),
      `${KUBECTL} -n kube-system get deployment coredns -o jsonpath='{.status.readyReplicas}' | grep -x 2`,
      "CoreDNS's two replicas ready",
    );
    await inMachine(machine(), `printf '%s' '${DNS_POD}' | ${KUBECTL} apply -f -`);
    await until(
      machine(),
      `${KUBECTL} get pod dns-check -o jsonpath='{.status.phase}' | grep -x Succeeded`,
      "the DNS lookup pod done",
    );
    const answer = await inMachine(machine(), `${KUBECTL} logs dns-check`);
    assert.match(answer, /Address:? .*10\.96\.0\.1\b/);
  });

  test("pulumi destroy: kubeadm reset, nothing of the cluster left on the machine", async () => {
    await inMachine(machine(), "rm -rf /etc/cni/net.d/10-lab.conflist && ip link delete cni-lab0");
    await (engine ?? assert.fail("no stack: the first test failed")).destroy();
    await inMachine(
      machine(),
      "test ! -e /etc/kubernetes/admin.conf && test ! -e /etc/kubernetes/manifests/kube-apiserver.yaml && " +
        "test ! -e /var/lib/etcd/member && test ! -e /usr/local/bin/kubeadm && test ! -e /opt/cni",
    );
    await inMachine(machine(), "! pgrep -x kube-apiserver && ! pgrep -x etcd && ! pgrep -x containerd-shim");
  });
});
