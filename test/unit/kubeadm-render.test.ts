/**
 * kubeadm configuration rendered for one and three control planes (external load balancer, kube-vip): every
 * document parses, names the stack's version, CIDRs, endpoint, SANs and taints, and the kubelet cgroup driver
 * matches nodeforge's kubelet drop-in. Also the stack checks for the control-plane settings.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import {
  apiServerUrl,
  CGROUP_V1_PREFLIGHT,
  CONTROL_PLANE_TAINT,
  KUBEADM_INIT_CONFIG,
  KUBEADM_JOIN_CONFIG,
  kubeadmInitFile,
  kubeadmJoinFile,
} from "../../modules/cluster-config";
import { DEFAULT_PINS, type Pins } from "../../modules/pins";
import { parseStack, StackValidationError, type MachineSpec, type StackSpec } from "../../modules/stack";
import { versionAtLeast } from "../../modules/stack/control-plane";
import { CGROUP_DRIVER, CRI_ENDPOINT } from "../../modules/steps/constants";
import { planMachine } from "../../modules/steps/plan";
import {
  clusterStack,
  clusterStackYaml,
  DNS_DOMAIN,
  EXTRA_SANS,
  LB_NAME,
  POD_CIDR,
  SERVICE_CIDR,
  TEST_CA_HASH,
  TEST_TOKEN,
  TOPOLOGIES,
  VERSION,
  VIP,
  type Topology,
} from "../harness/cluster-stacks";

type Doc = Record<string, unknown> & { kind: string };
/** Parsed YAML, read by path in assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>;

function docs(content: string): Doc[] {
  const parsed = parseAllDocuments(content);
  assert.ok(Array.isArray(parsed), "a YAML stream");
  return parsed.map((doc) => {
    assert.deepEqual(doc.errors, [], "YAML parses");
    return doc.toJS() as Doc;
  });
}

function byKind(all: Doc[], kind: string): Loose {
  const found = all.filter((d) => d.kind === kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0] as Loose;
}

function machine(stack: StackSpec, name: string): MachineSpec {
  const found = stack.machines.find((m) => m.name === name);
  assert.ok(found, name);
  return found;
}

const SECRETS = { bootstrapToken: TEST_TOKEN };
const ENDPOINTS: Record<Topology, string> = {
  single: "192.0.2.10:6443",
  "external-lb": `${LB_NAME}:6443`,
  "kube-vip": `${VIP}:6443`,
};

for (const topology of TOPOLOGIES) {
  describe(`kubeadm configuration: ${topology}`, () => {
    const stack = clusterStack(topology);
    const cp1 = machine(stack, "cp-1");
    const init = kubeadmInitFile(stack, cp1, SECRETS);
    const initDocs = docs(init.content);

    it("init: InitConfiguration, ClusterConfiguration and KubeletConfiguration, kubeadm.k8s.io/v1beta4", () => {
      assert.deepEqual(
        initDocs.map((d) => `${d.apiVersion as string} ${d.kind}`),
        [
          "kubeadm.k8s.io/v1beta4 InitConfiguration",
          "kubeadm.k8s.io/v1beta4 ClusterConfiguration",
          "kubelet.config.k8s.io/v1beta1 KubeletConfiguration",
        ],
      );
      assert.equal(init.path, KUBEADM_INIT_CONFIG);
      assert.equal(init.mode, "0600", "holds secrets");
      assert.equal(init.secret, true);
      assert.deepEqual([init.owner, init.group], ["root", "root"]);
    });

    it("ClusterConfiguration names the version, CIDRs, DNS domain, endpoint and SANs", () => {
      const cc = byKind(initDocs, "ClusterConfiguration");
      assert.equal(cc.kubernetesVersion, `v${VERSION}`);
      assert.equal(cc.clusterName, "lab");
      assert.deepEqual(cc.networking, { podSubnet: POD_CIDR, serviceSubnet: SERVICE_CIDR, dnsDomain: DNS_DOMAIN });
      assert.equal(cc.controlPlaneEndpoint, ENDPOINTS[topology]);
      const cps = stack.machines.filter((m) => m.role !== "worker").map((m) => m.address);
      const expected = [...EXTRA_SANS, ...cps];
      if (topology === "external-lb") expected.push(LB_NAME);
      if (topology === "kube-vip") expected.push(VIP);
      assert.deepEqual(
        cc.apiServer.certSANs,
        expected,
        "stack SANs, control-plane addresses, endpoint host, once each",
      );
      assert.deepEqual(cc.proxy, { disabled: true });
      assert.equal(cc.etcd, undefined, "stacked etcd unless external etcd is given");
    });

    it("InitConfiguration: node registration, token, no certificate key, kube-proxy phase skipped", () => {
      const ic = byKind(initDocs, "InitConfiguration");
      assert.equal(ic.bootstrapTokens[0].token, TEST_TOKEN);
      assert.equal(ic.certificateKey, undefined, "no certificate key: init uploads no certificates");
      assert.deepEqual(ic.skipPhases, ["addon/kube-proxy"]);
      assert.deepEqual(ic.localAPIEndpoint, { advertiseAddress: "192.0.2.10", bindPort: 6443 });
      assert.equal(ic.nodeRegistration.name, "cp-1");
      assert.equal(ic.nodeRegistration.criSocket, CRI_ENDPOINT);
      assert.deepEqual(ic.nodeRegistration.taints, [CONTROL_PLANE_TAINT]);
      assert.deepEqual(ic.nodeRegistration.kubeletExtraArgs, [{ name: "node-ip", value: "192.0.2.10" }]);
      // kube-vip's manifest in /etc/kubernetes/manifests fails no check: kubeadm 1.36 checks only its own files there.
      assert.equal(ic.nodeRegistration.ignorePreflightErrors, undefined);
    });

    it("KubeletConfiguration: the same cgroup driver and CRI endpoint as nodeforge's kubelet drop-in", () => {
      const kc = byKind(initDocs, "KubeletConfiguration");
      assert.equal(kc.cgroupDriver, CGROUP_DRIVER);
      assert.equal(kc.containerRuntimeEndpoint, CRI_ENDPOINT);
      assert.equal(kc.clusterDomain, DNS_DOMAIN);
      assert.deepEqual(kc.clusterDNS, [stack.derived.clusterDnsIp]);
      for (const m of stack.machines) {
        const dropIn = planMachine(stack, m)
          .flatMap((s) => s.files)
          .find((f) => f.path === "/etc/kubernetes/kubelet.conf.d/10-nodeforge.conf");
        assert.ok(dropIn, `${m.name}: the kubelet drop-in is planned`);
        const fromDropIn = docs(dropIn.content)[0] as Record<string, unknown>;
        assert.equal(kc.cgroupDriver, fromDropIn.cgroupDriver, m.name);
        assert.equal(kc.containerRuntimeEndpoint, fromDropIn.containerRuntimeEndpoint, m.name);
      }
    });

    it("worker join: discovery through the endpoint, the machine's taints, no controlPlane", () => {
      const join = kubeadmJoinFile(stack, machine(stack, "worker-1"), {
        bootstrapToken: TEST_TOKEN,
        caCertHashes: [TEST_CA_HASH],
      });
      assert.equal(join.path, KUBEADM_JOIN_CONFIG);
      assert.equal(join.mode, "0600");
      const [jc, ...rest] = docs(join.content);
      assert.deepEqual(rest, []);
      assert.equal(jc?.apiVersion, "kubeadm.k8s.io/v1beta4");
      assert.equal(jc?.kind, "JoinConfiguration");
      const j = jc as Loose;
      assert.deepEqual(j.discovery.bootstrapToken, {
        apiServerEndpoint: ENDPOINTS[topology],
        token: TEST_TOKEN,
        caCertHashes: [TEST_CA_HASH],
      });
      assert.deepEqual(j.nodeRegistration.taints, [
        { key: "dedicated", value: "batch", effect: "NoSchedule" },
        { key: "example.com/noisy", effect: "PreferNoSchedule" },
      ]);
      assert.equal(j.nodeRegistration.name, "worker-1");
      assert.equal(j.nodeRegistration.ignorePreflightErrors, undefined);
      assert.equal(j.controlPlane, undefined);
    });

    if (topology !== "single") {
      it("control-plane joins: advertise address, no certificate key; control-plane+worker stays untainted", () => {
        for (const [name, address, taints] of [
          ["cp-2", "192.0.2.11", [CONTROL_PLANE_TAINT]],
          ["cp-3", "192.0.2.12", []],
        ] as const) {
          const join = kubeadmJoinFile(stack, machine(stack, name), {
            bootstrapToken: TEST_TOKEN,
            caCertHashes: [TEST_CA_HASH],
          });
          const j = docs(join.content)[0] as Loose;
          assert.deepEqual(j.controlPlane, {
            localAPIEndpoint: { advertiseAddress: address, bindPort: 6443 },
          });
          assert.equal(j.discovery.bootstrapToken.apiServerEndpoint, ENDPOINTS[topology]);
          assert.deepEqual(j.nodeRegistration.taints, taints, name);
          assert.equal(j.nodeRegistration.ignorePreflightErrors, undefined);
        }
      });
    }
  });
}

describe("kubeadm configuration: options and refusals", () => {
  const stack = clusterStack("external-lb");
  const cp1 = machine(stack, "cp-1");

  it("external etcd: endpoints and client certificate paths", () => {
    const etcd = {
      endpoints: ["https://192.0.2.31:2379", "https://192.0.2.32:2379"],
      caFile: "/etc/kubernetes/pki/etcd/ca.crt",
      certFile: "/etc/kubernetes/pki/apiserver-etcd-client.crt",
      keyFile: "/etc/kubernetes/pki/apiserver-etcd-client.key",
    };
    const cc = byKind(
      docs(kubeadmInitFile(stack, cp1, SECRETS, { externalEtcd: etcd }).content),
      "ClusterConfiguration",
    );
    assert.deepEqual(cc.etcd, { external: etcd });
  });

  it("an IPv6 endpoint is bracketed, in kubeadm's files and the API URL", () => {
    const text = clusterStackYaml("single", "iptables")
      .replace("podCIDR: 10.32.0.0/16", "podCIDR: fd00:10:244::/56")
      .replace("serviceCIDR: 10.112.0.0/12", "serviceCIDR: fd00:10:96::/112")
      .replace('"203.0.113.50"', '"2001:db8::50"')
      .replace("address: 192.0.2.10", "address: 2001:db8::10")
      .replace("address: 192.0.2.21", "address: 2001:db8::21");
    const v6 = parseStack(text, "v6.yaml");
    const cc = byKind(docs(kubeadmInitFile(v6, machine(v6, "cp-1"), SECRETS).content), "ClusterConfiguration");
    assert.equal(cc.controlPlaneEndpoint, "[2001:db8::10]:6443");
    assert.equal(apiServerUrl(v6), "https://[2001:db8::10]:6443");
  });

  it("refuses malformed secrets without printing them", () => {
    const secret = "not-a-token-SECRETVALUE";
    assert.throws(
      () => kubeadmInitFile(stack, cp1, { ...SECRETS, bootstrapToken: secret }),
      (error: Error) =>
        /^cp-1: kubeadm configuration: the bootstrap token is not/.test(error.message) &&
        !error.message.includes(secret),
    );
  });

  it("a stack that lets the kubelet run on cgroup v1 skips kubeadm's cgroup v1 check, as kubeadm's message asks", () => {
    const v1 = parseStack(`${clusterStackYaml("single", "iptables")}kubelet:\n  failCgroupV1: false\n`, "v1.yaml");
    const join = { bootstrapToken: TEST_TOKEN, caCertHashes: [TEST_CA_HASH] };
    const init = byKind(docs(kubeadmInitFile(v1, machine(v1, "cp-1"), SECRETS).content), "InitConfiguration");
    assert.deepEqual(init.nodeRegistration.ignorePreflightErrors, [CGROUP_V1_PREFLIGHT]);
    const worker = byKind(docs(kubeadmJoinFile(v1, machine(v1, "worker-1"), join).content), "JoinConfiguration");
    assert.deepEqual(worker.nodeRegistration.ignorePreflightErrors, [CGROUP_V1_PREFLIGHT]);
    // The default (the kubelet refuses cgroup v1) keeps every check fatal.
    const own = byKind(docs(kubeadmInitFile(stack, cp1, SECRETS).content), "InitConfiguration");
    assert.equal(own.nodeRegistration.ignorePreflightErrors, undefined);
  });

  it("refuses init on a worker and a join on the init machine", () => {
    const join = { bootstrapToken: TEST_TOKEN, caCertHashes: [TEST_CA_HASH] };
    assert.throws(() => kubeadmInitFile(stack, machine(stack, "worker-1"), SECRETS), /worker-1: kubeadm init runs/);
    assert.throws(() => kubeadmJoinFile(stack, cp1, join), /cp-1: is the first control-plane machine/);
    assert.throws(
      () => kubeadmJoinFile(stack, machine(stack, "worker-1"), { ...join, caCertHashes: ["md5:00"] }),
      /CA certificate hash is not sha256:/,
    );
  });
});

/** The stack file's issues as `path: message`. */
function issues(text: string, pins?: Pins): string[] {
  try {
    parseStack(text, "stack.yaml", pins);
    return [];
  } catch (error) {
    assert.ok(error instanceof StackValidationError, String(error));
    return error.issues.map((i) => `${i.path}: ${i.message}`);
  }
}

describe("stack checks for the control plane", () => {
  it("accepts every topology in every kube-proxy mode", () => {
    for (const topology of TOPOLOGIES) {
      for (const mode of ["iptables", "ipvs", "nftables"] as const) {
        assert.deepEqual(issues(clusterStackYaml(topology, mode)), [], `${topology} ${mode}`);
      }
    }
  });

  it("defaults kube-proxy to iptables", () => {
    const text = clusterStackYaml("single", "iptables").replace("kubeProxy:\n  mode: iptables\n", "");
    assert.equal(parseStack(text, "s.yaml").kubeProxy.mode, "iptables");
  });

  it("requires controlPlaneEndpoint with several control planes, naming the path and the machines", () => {
    const text = clusterStackYaml("external-lb", "iptables")
      .replace(`  controlPlaneEndpoint: "${LB_NAME}:6443"\n`, "")
      .replace(`  controlPlaneLoadBalancer: { type: external, address: ${LB_NAME} }\n`, "");
    assert.deepEqual(issues(text), [
      "cluster.controlPlaneEndpoint: is required with 3 control-plane machines (cp-1, cp-2, cp-3): set it to a load balancer or kube-vip address that reaches every API server",
    ]);
  });

  it("requires an odd number of control planes (stacked etcd)", () => {
    const text = clusterStackYaml("external-lb", "iptables").replace("role: control-plane+worker", "role: worker");
    assert.deepEqual(issues(text), [
      "machines: has 2 control-plane machines (cp-1, cp-2); stacked etcd needs an odd number (1, 3, 5, ...) to keep a quorum when one fails",
    ]);
  });

  it("checks the endpoint's syntax, and that kube-vip's endpoint is its VIP on port 6443", () => {
    const base = clusterStackYaml("kube-vip", "iptables");
    assert.deepEqual(
      issues(base.replace(`controlPlaneEndpoint: "${VIP}"`, 'controlPlaneEndpoint: "192.0.2.100:99999"')),
      ["cluster.controlPlaneEndpoint: '192.0.2.100:99999' has port '99999', which is out of range 1-65535"],
    );
    assert.deepEqual(
      issues(base.replace(`controlPlaneEndpoint: "${VIP}"`, 'controlPlaneEndpoint: "192.0.2.101:8443"')),
      [
        "cluster.controlPlaneEndpoint: '192.0.2.101:8443' must have the kube-vip address 192.0.2.100 as its host",
        "cluster.controlPlaneEndpoint: '192.0.2.101:8443' must use port 6443 with kube-vip (the API servers' port)",
      ],
    );
    assert.deepEqual(
      issues(
        base
          .replace(`address: "${VIP}"`, 'address: "192.0.2.11"')
          .replace(`Endpoint: "${VIP}"`, 'Endpoint: "192.0.2.11"'),
      ),
      [
        "cluster.controlPlaneLoadBalancer.address: '192.0.2.11' is the address of machine cp-2; the virtual IP must be an unused address",
      ],
    );
    assert.deepEqual(
      issues(
        clusterStackYaml("external-lb", "iptables").replace(
          `address: ${LB_NAME} }`,
          `address: ${LB_NAME}, interface: eth0 }`,
        ),
      ),
      ["cluster.controlPlaneLoadBalancer.interface: applies only to type kube-vip"],
    );
  });

  it("refuses nftables before Kubernetes 1.33, checking the version string", () => {
    assert.ok(
      versionAtLeast("1.33.8", "1.33") && versionAtLeast("1.35.1", "1.33") && !versionAtLeast("1.32.9", "1.33"),
    );
    const release = DEFAULT_PINS.kubernetes[VERSION];
    assert.ok(release);
    const pins: Pins = { ...DEFAULT_PINS, kubernetes: { "1.32.9": release } };
    const text = clusterStackYaml("single", "nftables").replace(`"${VERSION}"`, '"1.32.9"');
    assert.deepEqual(issues(text, pins), [
      "kubeProxy.mode: 'nftables' needs Kubernetes 1.33 or later; cluster.kubernetesVersion is '1.32.9' (use iptables or ipvs)",
    ]);
    assert.deepEqual(issues(clusterStackYaml("single", "ipvs").replace(`"${VERSION}"`, '"1.32.9"'), pins), []);
  });
});
