/**
 * A real cluster from bare machines: one `pulumi up` (the real engine) on a control plane and two workers runs the
 * real kubeadm init and joins (v1.36.3, built from the Kubernetes Go module like the kubelet, kubectl and the
 * control-plane images), nodeforge's kube-proxy DaemonSet and the real flannel (its own release manifest, checked
 * against its sha256 and adapted to the pod CIDR by nodeforge's CNI step; flanneld and its CNI plugin built from
 * their Go modules). Every image (etcd, the API server, controller manager, scheduler, kube-proxy, CoreDNS, flannel,
 * pause) is pulled by containerd through nodeforge's registry mirrors from the lab's registry, as an air-gapped
 * site's would be. Then: every node Ready, kube-proxy and flannel on each, kubeadm's CoreDNS serving, a pod on each
 * worker reaching a Service by its DNS name and the pod on the other worker by its pod IP; `pulumi destroy` resets
 * every machine.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { after, describe, test } from "node:test";
import { kubeadmCertificates } from "../../modules/cluster-config";
import { KUBERNETES_BUILD_VERSION } from "../harness/kubernetes-build";
import { labClusterYaml, labStackYaml, setLabSiteNetwork } from "../harness/lab-stack";
import { useMachines, type Machine } from "../harness/machines";
import { inMachine, untilOutput } from "../harness/provision";
import { changed, engineStack, type EngineStack } from "../harness/pulumi-engine";
import { ensureRootfs } from "../harness/rootfs";
import { ensureTinyImage, TINY_IMAGE_REF } from "../harness/tiny-image";

const KUBECTL = "kubectl --kubeconfig /etc/kubernetes/admin.conf";
const WORKERS = ["worker-1", "worker-2"];

/** A web server pod on one worker: answers with its node's name. */
function echoPod(node: string): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: `echo-${node}`, namespace: "default", labels: { app: "echo" } },
    spec: {
      nodeName: node,
      containers: [
        {
          name: "echo",
          image: TINY_IMAGE_REF,
          command: ["/bin/sh", "-c", `mkdir /www && echo ${node} > /www/index.html && exec httpd -f -p 8080 -h /www`],
          ports: [{ containerPort: 8080 }],
          readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
        },
      ],
    },
  });
}

const ECHO_SERVICE = JSON.stringify({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name: "echo", namespace: "default" },
  spec: { selector: { app: "echo" }, ports: [{ port: 80, targetPort: 8080 }] },
});

describe(
  `a real cluster: kubeadm v${KUBERNETES_BUILD_VERSION}, 1 control plane + 2 workers, flannel`,
  {
    timeout: 1_500_000,
  },
  () => {
    const lab = useMachines(3, { names: ["cp-1", ...WORKERS], imageRegistry: true });
    let engine: EngineStack | undefined;
    after(async () => {
      await engine?.remove();
    });
    const cp = (): Machine => lab().machines[0]!;
    const kubectl = (args: string): Promise<string> => inMachine(cp(), `${KUBECTL} ${args}`);

    test("pulumi up from bare machines: kubeadm init and joins, every node Ready", async () => {
      const registry = lab().registry ?? assert.fail("no registry");
      // The test pods' image, from the same registry (docker.io's mirror).
      await registry.push((await ensureTinyImage(await ensureRootfs())).path, "nodeforge/tiny", "test");
      const yaml = labStackYaml(lab(), { kubernetesVersion: KUBERNETES_BUILD_VERSION, extra: labClusterYaml(lab()) });
      await setLabSiteNetwork(lab());
      engine = await engineStack(yaml, lab().clientPrivateKey);
      const started = Date.now();
      try {
        await engine.up();
      } finally {
        console.log(`pulumi up, 1 control plane + 2 workers: ${((Date.now() - started) / 1000).toFixed(1)} s`);
      }
      const version = JSON.parse(await kubectl("version -o json")) as { serverVersion: { gitVersion: string } };
      assert.equal(version.serverVersion.gitVersion, `v${KUBERNETES_BUILD_VERSION}`);
      await untilOutput(
        cp(),
        `${KUBECTL} wait --for=condition=Ready node --all --timeout=5s >/dev/null && ${KUBECTL} get nodes -o name`,
        "every node Ready",
      );
      console.log(`every node Ready ${((Date.now() - started) / 1000).toFixed(1)} s after pulumi up started`);
      assert.deepEqual((await kubectl("get nodes -o name")).trim().split("\n"), [
        "node/cp-1",
        "node/worker-1",
        "node/worker-2",
      ]);
    });

    test("kube-proxy and flannel run on every node; the control plane from the lab registry's images", async () => {
      for (const [namespace, daemonSet] of [
        ["kube-system", "kube-proxy"],
        ["kube-flannel", "kube-flannel-ds"],
      ]) {
        await untilOutput(
          cp(),
          `${KUBECTL} -n ${namespace} get daemonset ${daemonSet} -o jsonpath='{.status.numberReady}' | grep -x 3`,
          `${daemonSet} ready on the three nodes`,
        );
      }
      const config = await kubectl("-n kube-system get configmap kube-proxy -o jsonpath='{.data.config\\.conf}'");
      assert.match(config, /^mode: "iptables"$/m);
      for (const component of ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]) {
        const ready = await kubectl(
          `-n kube-system get pod ${component}-cp-1 -o jsonpath='{.status.containerStatuses[0].ready}'`,
        );
        assert.equal(ready, "true", component);
      }
      // flannel's configuration was adapted to the stack's pod CIDR, and each node got its own subnet of it.
      const net = await inMachine(lab().machines[1]!, "cat /run/flannel/subnet.env");
      assert.match(net, /^FLANNEL_NETWORK=10\.244\.0\.0\/16$/m);
      assert.match(net, /^FLANNEL_SUBNET=10\.244\.\d+\.1\/24$/m);
    });

    test("CoreDNS serves; a pod on each worker reaches a Service by name and the other worker's pod by IP", async () => {
      await untilOutput(
        cp(),
        `${KUBECTL} -n kube-system get deployment coredns -o jsonpath='{.status.readyReplicas}' | grep -x 2`,
        "CoreDNS's two replicas ready",
      );
      for (const worker of WORKERS) await inMachine(cp(), `printf '%s' '${echoPod(worker)}' | ${KUBECTL} apply -f -`);
      await inMachine(cp(), `printf '%s' '${ECHO_SERVICE}' | ${KUBECTL} apply -f -`);
      await untilOutput(
        cp(),
        `${KUBECTL} wait --for=condition=Ready pod -l app=echo --timeout=5s >/dev/null && echo ready`,
        "the echo pods ready",
      );
      const ips = Object.fromEntries(
        await Promise.all(
          WORKERS.map(async (w) => [w, (await kubectl(`get pod echo-${w} -o jsonpath='{.status.podIP}'`)).trim()]),
        ),
      ) as Record<string, string>;
      for (const [i, worker] of WORKERS.entries()) {
        const other = WORKERS[1 - i]!;
        assert.notEqual(ips[worker], ips[other]);
        // The image holds busybox and its shell, which runs busybox's applets (wget) by name.
        const exec = `${KUBECTL} exec echo-${worker} -- /bin/sh -c`;
        // By pod IP, across the nodes (flannel's VXLAN between the workers).
        assert.equal((await inMachine(cp(), `${exec} 'wget -qO- http://${ips[other]}:8080/'`)).trim(), other);
        // By the Service's DNS name: CoreDNS answers, kube-proxy's rules lead to one of the two pods. Services
        // converge (kube-proxy programs the node once it has seen the Service and its endpoints): each attempt is
        // bounded, the time to the first answer printed, and a node that never answers shows its rules.
        const started = Date.now();
        const byName = `${exec} 'timeout 5 wget -qO- http://echo.default.svc.cluster.local/'`;
        const answer = await untilOutput(cp(), byName, `${worker}: the echo Service by name`, 60).catch(
          async (error: unknown) => {
            const node = lab().machines.find((m) => m.name === worker)!;
            const rules = await node.run("iptables-save -t nat | grep -e echo -e KUBE-SERVICES | head -n 40");
            throw new Error(`${String(error)}\n${worker}'s kube-proxy rules:\n${rules.stdout}${rules.stderr}`);
          },
        );
        console.log(`${worker}: the Service answered by name within ${((Date.now() - started) / 1000).toFixed(1)} s`);
        assert.ok(WORKERS.includes(answer.trim()), answer);
      }
    });

    test("certificates.renewal: kubeadm's certificates and the admin's renewed, the control plane back, no other change", async () => {
      const stack = engine ?? assert.fail("no stack: the first test failed");
      const apiServerCert = () =>
        inMachine(cp(), "sha256sum /etc/kubernetes/pki/apiserver.crt /etc/kubernetes/admin.conf");
      const expiry = async () => (await stack.stack.outputs()).certificateExpiry?.value as Record<string, string>;
      const [certsBefore, expiryBefore] = [await apiServerCert(), await expiry()];
      // kubeadm's own certificates, read on the control plane, by the names `kubeadm certs check-expiration` gives.
      const kubeadms = kubeadmCertificates(true).map((c) => `cp-1/${c.name}`);
      assert.deepEqual(
        Object.keys(expiryBefore).sort(),
        ["admin", "ca", "etcd-ca", "front-proxy-ca", ...kubeadms].sort(),
      );
      assert.ok(Date.parse(expiryBefore.ca!) > Date.now() + 9 * 365 * 86_400_000, "the CA lasts ten years");
      const onMachine = new X509Certificate(await inMachine(cp(), "cat /etc/kubernetes/pki/apiserver.crt"));
      assert.equal(
        expiryBefore["cp-1/apiserver"],
        new Date(onMachine.validTo).toISOString(),
        "the API server certificate's expiry as it is on the machine",
      );
      for (const name of kubeadms) {
        const days = (Date.parse(expiryBefore[name]!) - Date.now()) / 86_400_000;
        assert.ok(days > 364 && days <= 365, `${name} lasts a year from its init: ${days} days left`);
      }
      const yaml = labStackYaml(lab(), { kubernetesVersion: KUBERNETES_BUILD_VERSION, extra: labClusterYaml(lab()) });
      stack.writeStackFile(`${yaml}certificates:\n  renewal: "2026-12"\n`);
      const preview = await stack.preview();
      assert.deepEqual(
        changed(preview),
        ["cp-1-certificate-renewal:update", "lab-admin-certificate:update"],
        "preview shows the renewal on the control plane and the admin's certificate, nothing on the workers",
      );
      const started = Date.now();
      await stack.up();
      console.log(
        `pulumi up renewing the control plane's certificates: ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
      const certsAfter = await apiServerCert();
      const [apiBefore, adminBefore] = certsBefore.trim().split("\n");
      const [apiAfter, adminAfter] = certsAfter.trim().split("\n");
      assert.notEqual(apiAfter, apiBefore, "kubeadm renewed the API server's certificate");
      assert.notEqual(adminAfter, adminBefore, "and the control plane's admin.conf");
      const expiryAfter = await expiry();
      assert.ok(
        Date.parse(expiryAfter.admin!) > Date.parse(expiryBefore.admin!),
        "the stack's admin certificate reissued",
      );
      assert.equal(expiryAfter.ca, expiryBefore.ca, "the CAs stay");
      for (const name of kubeadms) {
        assert.ok(Date.parse(expiryAfter[name]!) > Date.parse(expiryBefore[name]!), `${name} renewed`);
      }
      // The API server serves its new certificate, and the cluster is whole.
      await untilOutput(
        cp(),
        `${KUBECTL} wait --for=condition=Ready node --all --timeout=5s >/dev/null && echo ok`,
        "every node Ready",
      );
      await stack.preview({ expectNoChanges: true });
    });

    test("pulumi destroy: drained, reset, nothing of the cluster left on any machine", async () => {
      await kubectl("delete pod -l app=echo --wait=false");
      await (engine ?? assert.fail("no stack: the first test failed")).destroy();
      for (const machine of lab().machines) {
        await inMachine(
          machine,
          "test ! -e /etc/kubernetes/admin.conf && test ! -e /etc/kubernetes/kubelet.conf && " +
            "test ! -e /etc/kubernetes/manifests/kube-apiserver.yaml && test ! -e /var/lib/etcd/member && " +
            "test ! -e /usr/local/bin/kubeadm && test ! -e /opt/cni && test ! -e /etc/cni/net.d/10-flannel.conflist",
        );
        await inMachine(machine, "! pgrep -x kube-apiserver && ! pgrep -x flanneld && ! pgrep -x containerd-shim");
        await inMachine(machine, "! ip link show flannel.1 2>/dev/null && ! ip link show cni0 2>/dev/null");
      }
    });
  },
);
