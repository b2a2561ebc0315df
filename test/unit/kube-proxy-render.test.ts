/**
 * The kube-proxy manifest (every mode, one and three control planes) and the kube-vip static pod, validated
 * against the Kubernetes API schema (kubernetes-models); plus proof that the validation rejects broken manifests.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import {
  ADMIN_KUBECONFIG,
  apiServerUrl,
  KUBE_PROXY_MANIFEST,
  KUBE_VIP_MANIFEST,
  kubeProxyManifestFile,
  kubeVipManifestFile,
  SUPER_ADMIN_KUBECONFIG,
} from "../../modules/cluster-config";
import { DEFAULT_PINS } from "../../modules/pins";
import { parseStack, type MachineSpec, type StackSpec } from "../../modules/stack";
import { clusterStack, clusterStackYaml, MODES, POD_CIDR, TOPOLOGIES, VERSION, VIP } from "../harness/cluster-stacks";
import { kubernetesSchemaErrors } from "../harness/k8s-validate";

/** Parsed YAML, read by path in assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Manifest = Record<string, any>;

function manifests(content: string): Manifest[] {
  const parsed = parseAllDocuments(content);
  assert.ok(Array.isArray(parsed));
  return parsed.map((doc) => {
    assert.deepEqual(doc.errors, []);
    return doc.toJS() as Manifest;
  });
}

function kind(all: Manifest[], name: string): Manifest {
  const found = all.find((m) => m.kind === name);
  assert.ok(found, name);
  return found;
}

function machine(stack: StackSpec, name: string): MachineSpec {
  const found = stack.machines.find((m) => m.name === name);
  assert.ok(found, name);
  return found;
}

async function assertValid(all: Manifest[]): Promise<void> {
  for (const m of all) assert.deepEqual(await kubernetesSchemaErrors(m), [], `${m.kind} ${m.metadata?.name}`);
}

for (const topology of TOPOLOGIES) {
  for (const mode of MODES) {
    describe(`kube-proxy: ${topology}, ${mode}`, () => {
      const stack = clusterStack(topology, mode);
      const file = kubeProxyManifestFile(stack);
      const all = manifests(file.content);

      it("is one multi-document file of the four objects, each valid against the Kubernetes API schema", async () => {
        assert.equal(file.path, KUBE_PROXY_MANIFEST);
        assert.equal(file.mode, "0644");
        assert.deepEqual(
          all.map((m) => `${m.apiVersion} ${m.kind} ${m.metadata.name}`),
          [
            "v1 ServiceAccount kube-proxy",
            "rbac.authorization.k8s.io/v1 ClusterRoleBinding nodeforge:node-proxier",
            "v1 ConfigMap kube-proxy",
            "apps/v1 DaemonSet kube-proxy",
          ],
        );
        await assertValid(all);
      });

      it("binds the kube-proxy service account to system:node-proxier", () => {
        const crb = kind(all, "ClusterRoleBinding");
        assert.deepEqual(crb.roleRef, {
          apiGroup: "rbac.authorization.k8s.io",
          kind: "ClusterRole",
          name: "system:node-proxier",
        });
        assert.deepEqual(crb.subjects, [{ kind: "ServiceAccount", name: "kube-proxy", namespace: "kube-system" }]);
        assert.equal(kind(all, "ServiceAccount").metadata.namespace, "kube-system");
      });

      it(`configures mode ${mode}, the pod CIDR, and an in-cluster kubeconfig for the control-plane endpoint`, () => {
        const data = kind(all, "ConfigMap").data as Record<string, string>;
        const config = parse(data["config.conf"] ?? "") as Manifest;
        assert.equal(config.apiVersion, "kubeproxy.config.k8s.io/v1alpha1");
        assert.equal(config.kind, "KubeProxyConfiguration");
        assert.equal(config.mode, mode);
        assert.equal(config.clusterCIDR, POD_CIDR);
        assert.equal(config.clientConnection.kubeconfig, "/var/lib/kube-proxy/kubeconfig.conf");
        const kubeconfig = parse(data["kubeconfig.conf"] ?? "") as Manifest;
        assert.equal(kubeconfig.kind, "Config");
        assert.equal(kubeconfig.clusters[0].cluster.server, apiServerUrl(stack));
        assert.equal(
          kubeconfig.clusters[0].cluster["certificate-authority"],
          "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
        );
        assert.equal(kubeconfig.users[0].user.tokenFile, "/var/run/secrets/kubernetes.io/serviceaccount/token");
        // No conntrack setting unless the stack names one: kube-proxy's own default applies.
        assert.equal(config.conntrack, undefined);
      });

      it("runs privileged on the host network of every node, with the xtables lock and kernel modules", () => {
        const ds = kind(all, "DaemonSet");
        const pod = ds.spec.template.spec;
        assert.equal(pod.hostNetwork, true);
        assert.equal(pod.priorityClassName, "system-node-critical");
        assert.equal(pod.serviceAccountName, "kube-proxy");
        assert.deepEqual(pod.tolerations, [{ operator: "Exists" }]);
        assert.equal(ds.spec.updateStrategy.type, "RollingUpdate");
        assert.deepEqual(ds.spec.selector.matchLabels, ds.spec.template.metadata.labels);
        const [container] = pod.containers;
        assert.equal(container.image, `registry.k8s.io/kube-proxy:v${VERSION}`);
        assert.equal(container.securityContext.privileged, true);
        const paths = pod.volumes.filter((v: Manifest) => v.hostPath).map((v: Manifest) => v.hostPath.path);
        assert.deepEqual(paths, ["/run/xtables.lock", "/lib/modules"]);
        assert.ok(container.command.includes("--hostname-override=$(NODE_NAME)"));
      });
    });
  }
}

describe("kube-proxy: configuration changes roll the pods", () => {
  it("the pod template's annotation changes with the mode", () => {
    const hashOf = (mode: (typeof MODES)[number]) =>
      kind(manifests(kubeProxyManifestFile(clusterStack("single", mode)).content), "DaemonSet").spec.template.metadata
        .annotations["nodeforge.dev/config-sha256"];
    assert.equal(new Set(MODES.map(hashOf)).size, 3);
  });

  it("conntrackMaxPerCore 0 (nodes that are containers) reaches the configuration and rolls the pods", () => {
    const yaml = clusterStackYaml("single", "iptables");
    const stack = parseStack(
      yaml.replace("  mode: iptables\n", "  mode: iptables\n  conntrackMaxPerCore: 0\n"),
      "c.yaml",
    );
    const all = manifests(kubeProxyManifestFile(stack).content);
    const config = parse((kind(all, "ConfigMap").data as Record<string, string>)["config.conf"] ?? "") as Manifest;
    assert.deepEqual(config.conntrack, { maxPerCore: 0 });
    const annotation = (m: Manifest[]) =>
      kind(m, "DaemonSet").spec.template.metadata.annotations["nodeforge.dev/config-sha256"] as string;
    assert.notEqual(annotation(all), annotation(manifests(kubeProxyManifestFile(clusterStack("single")).content)));
  });
});

describe("kube-vip static pod", () => {
  const stack = clusterStack("kube-vip");

  it("is a valid Pod on every control-plane machine: ARP, the VIP, the interface, port 6443", async () => {
    for (const name of ["cp-1", "cp-2", "cp-3"]) {
      const file = kubeVipManifestFile(stack, machine(stack, name), { bootstrap: false });
      assert.equal(file.path, KUBE_VIP_MANIFEST);
      assert.equal(file.mode, "0600");
      const all = manifests(file.content);
      assert.equal(all.length, 1);
      await assertValid(all);
      const pod = all[0] as Manifest;
      assert.equal(pod.metadata.namespace, "kube-system");
      assert.equal(pod.spec.hostNetwork, true);
      const [container] = pod.spec.containers;
      assert.equal(container.image, DEFAULT_PINS.kubeVipImage);
      assert.match(container.image, /^ghcr\.io\/kube-vip\/kube-vip:v[0-9]+\.[0-9]+\.[0-9]+$/);
      const env = Object.fromEntries(
        container.env.filter((e: Manifest) => "value" in e).map((e: Manifest) => [e.name, e.value]),
      );
      assert.equal(env.vip_arp, "true");
      assert.equal(env.address, VIP);
      assert.equal(env.vip_interface, "eth0");
      assert.equal(env.cp_enable, "true");
      assert.equal(env.port, "6443");
      assert.equal(env.lb_enable, "true");
      assert.equal(env.lb_port, "6443");
      assert.equal(env.vip_leaderelection, "true");
      assert.deepEqual(container.securityContext.capabilities.add, ["NET_ADMIN", "NET_RAW"]);
      assert.equal(pod.spec.volumes[0].hostPath.path, ADMIN_KUBECONFIG);
    }
  });

  it("uses super-admin.conf on the init machine while kubeadm init runs", () => {
    const pod = manifests(kubeVipManifestFile(stack, machine(stack, "cp-1"), { bootstrap: true }).content)[0];
    assert.equal(pod?.spec.volumes[0].hostPath.path, SUPER_ADMIN_KUBECONFIG);
    assert.equal(pod?.spec.volumes[0].hostPath.type, "File");
  });

  it("is refused for a worker and for a stack without kube-vip", () => {
    assert.throws(
      () => kubeVipManifestFile(stack, machine(stack, "worker-1"), { bootstrap: false }),
      /worker-1: kube-vip runs on control-plane machines only/,
    );
    const external = clusterStack("external-lb");
    assert.throws(
      () => kubeVipManifestFile(external, machine(external, "cp-1"), { bootstrap: false }),
      /cp-1: the stack does not use kube-vip/,
    );
  });
});

describe("the schema validation itself", () => {
  const good = () => manifests(kubeProxyManifestFile(clusterStack("single")).content);

  it("rejects a DaemonSet without a selector", async () => {
    const ds = structuredClone(kind(good(), "DaemonSet"));
    delete ds.spec.selector;
    const errors = await kubernetesSchemaErrors(ds);
    assert.equal(errors.length, 1);
    assert.match(errors[0] ?? "", /selector/);
  });

  it("rejects a wrong field type (hostNetwork as a string, a port as text)", async () => {
    const ds = structuredClone(kind(good(), "DaemonSet"));
    ds.spec.template.spec.hostNetwork = "yes";
    assert.match((await kubernetesSchemaErrors(ds))[0] ?? "", /hostNetwork must be boolean/);
    const pod = manifests(
      kubeVipManifestFile(clusterStack("kube-vip"), clusterStack("kube-vip").machines[0] as MachineSpec, {
        bootstrap: false,
      }).content,
    )[0];
    const broken = structuredClone(pod) as Manifest;
    broken.spec.containers[0].ports = [{ containerPort: "6443" }];
    assert.match((await kubernetesSchemaErrors(broken))[0] ?? "", /containerPort must be integer/);
  });

  it("rejects a container without an image name and a ClusterRoleBinding without roleRef", async () => {
    const ds = structuredClone(kind(good(), "DaemonSet"));
    delete ds.spec.template.spec.containers[0].name;
    assert.match((await kubernetesSchemaErrors(ds))[0] ?? "", /name/);
    const crb = structuredClone(kind(good(), "ClusterRoleBinding"));
    delete crb.roleRef;
    assert.match((await kubernetesSchemaErrors(crb))[0] ?? "", /roleRef/);
  });
});
