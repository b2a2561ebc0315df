/**
 * kubeadm init against an external etcd, for real: one `pulumi up` (the real engine) installs the pinned etcd
 * release (3.6.8, built from etcd's Go modules in the release's layout) on three dedicated machines, forms the TLS
 * cluster with nodeforge's certificates, and runs the real kubeadm init (v1.36.3) on a control-plane machine whose
 * API server stores the cluster in it. kubeadm's external etcd preflight check (at least 3.5.24 for 1.36) passes,
 * and what the API stores is in the members' keyspace. `pulumi destroy` removes the members and resets the node.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { ETCD_CA_FILE, ETCD_CLIENT_CERT_FILE, ETCD_CLIENT_KEY_FILE } from "../../modules/etcd";
import { KUBERNETES_BUILD_VERSION } from "../harness/kubernetes-build";
import { labClusterYaml, labStackYaml, setLabSiteNetwork } from "../harness/lab-stack";
import { useMachines, type Machine } from "../harness/machines";
import { inMachine } from "../harness/provision";
import { engineStack, type EngineStack } from "../harness/pulumi-engine";

const KUBECTL = "kubectl --kubeconfig /etc/kubernetes/admin.conf";
const ETCD = ["etcd-1", "etcd-2", "etcd-3"];

describe(
  `kubeadm v${KUBERNETES_BUILD_VERSION} init against an external etcd of three members`,
  {
    timeout: 1_200_000,
  },
  () => {
    const lab = useMachines(4, { names: ["cp-1", ...ETCD], imageRegistry: true });
    let engine: EngineStack | undefined;
    after(async () => {
      await engine?.remove();
    });
    const cp = (): Machine => lab().machines[0]!;
    const members = (): Machine[] => lab().machines.slice(1);

    test("pulumi up: the members run etcd 3.6.8, kubeadm init stores the cluster in them", async () => {
      const etcdYaml = [
        "etcd:",
        "  external:",
        "    machines:",
        ...members().flatMap((m) => [
          `      - name: ${m.name}`,
          `        address: ${m.address}`,
          "        os: debian-12",
          `        hostKey: ${m.hostKey}`,
        ]),
      ].join("\n");
      const yaml = labStackYaml(
        { ...lab(), machines: [cp()] },
        { kubernetesVersion: KUBERNETES_BUILD_VERSION, extra: `${labClusterYaml(lab())}${etcdYaml}\n` },
      );
      await setLabSiteNetwork(lab());
      engine = await engineStack(yaml, lab().clientPrivateKey);
      const started = Date.now();
      try {
        await engine.up();
      } finally {
        console.log(`pulumi up, 3 etcd members + 1 control plane: ${((Date.now() - started) / 1000).toFixed(1)} s`);
      }
      for (const member of members()) {
        assert.match(await inMachine(member, "/usr/local/bin/etcd --version"), /^etcd Version: 3\.6\.8$/m);
      }
      // No etcd of kubeadm's own on the control plane: its API server uses the members.
      await inMachine(cp(), "test ! -e /etc/kubernetes/manifests/etcd.yaml");
      const apiServer = await inMachine(cp(), "cat /etc/kubernetes/manifests/kube-apiserver.yaml");
      for (const member of members()) assert.ok(apiServer.includes(`https://${member.address}:2379`), member.name);
      await inMachine(cp(), `${KUBECTL} create configmap external-etcd-probe --from-literal=stored=yes`);
      const keys = await inMachine(
        members()[1]!,
        `/usr/local/bin/etcdctl --endpoints=https://127.0.0.1:2379 --cacert=${ETCD_CA_FILE} ` +
          `--cert=${ETCD_CLIENT_CERT_FILE} --key=${ETCD_CLIENT_KEY_FILE} get --keys-only ` +
          "/registry/configmaps/default/external-etcd-probe",
      );
      assert.equal(keys.trim(), "/registry/configmaps/default/external-etcd-probe");
      // The etcd cluster's certificates are nodeforge's (two years); kubeadm's read on the control plane lack etcd's.
      const expiry = (await engine.stack.outputs()).certificateExpiry?.value as Record<string, string>;
      const names = Object.keys(expiry);
      for (const name of ["external-etcd-ca", "external-etcd-client", ...ETCD.map((m) => `${m}/etcd-member`)]) {
        assert.ok(names.includes(name), `${name} in ${names.join(" ")}`);
      }
      const days = (Date.parse(expiry[`${ETCD[0]}/etcd-member`]!) - Date.now()) / 86_400_000;
      assert.ok(days > 729 && days <= 730, `a member's certificate: ${days} days`);
      assert.ok(names.includes("cp-1/apiserver"));
      assert.ok(!names.some((n) => n.startsWith("cp-1/etcd-") || n === "etcd-ca"), names.join(" "));
    });

    test("pulumi destroy: the node reset, the members' programs, data and user gone", async () => {
      await (engine ?? assert.fail("no stack: the first test failed")).destroy();
      await inMachine(cp(), "test ! -e /etc/kubernetes/admin.conf && ! pgrep -x kube-apiserver");
      for (const member of members()) {
        await inMachine(
          member,
          "test ! -e /usr/local/bin/etcd && test ! -e /var/lib/etcd && test ! -e /etc/etcd/pki && ! id -u etcd 2>/dev/null",
        );
      }
    });
  },
);
