/**
 * The cluster bootstrap under Pulumi's mocks on a highly available stack (3 control planes, 2 workers):
 * kubeadm init -> control-plane joins one at a time -> worker joins in parallel -> kube-proxy, and the
 * secrets it carries stay secrets.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { Cluster } from "../../modules/components";
import { kubeadmInitScript, kubeadmJoinScript } from "../../modules/plan";
import { leftoverPreflightChecks } from "../../modules/cluster-config";
import { shellQuote } from "../../modules/render/shell";
import { render } from "../../modules/render";
import type { MachineSpec } from "../../modules/stack";
import { parseStack } from "../../modules/stack";
import {
  captureProgram,
  findResource,
  FAKE_CLUSTER_PKI,
  isSecret,
  outputValue,
  runOf,
  STEP_TYPE,
  stepFiles,
  type CapturedResource,
} from "../harness/pulumi-mocks";
import { assertCleanShell } from "../harness/shell-check";
import { TEST_HOST_KEY } from "../harness/stack-builder";

const MACHINES = [
  ["cp-1", "control-plane"],
  ["cp-2", "control-plane"],
  ["cp-3", "control-plane"],
  ["worker-1", "worker"],
  ["worker-2", "worker"],
];

function haStack(extraCluster = "") {
  const machines = MACHINES.map(([name, role], i) =>
    [
      `  - name: ${name}`,
      `    address: 192.0.2.${10 + i}`,
      `    role: ${role}`,
      "    os: debian-12",
      `    hostKey: ${TEST_HOST_KEY}`,
    ].join("\n"),
  );
  const yaml = [
    "cluster:",
    "  name: ha",
    '  kubernetesVersion: "1.36.4"',
    "  controlPlaneEndpoint: 192.0.2.100:6443",
    extraCluster,
    "machines:",
    ...machines,
  ].join("\n");
  return parseStack(`${yaml}\n`, "ha.yaml");
}

describe("cluster bootstrap (mocks, 3 control planes + 2 workers)", () => {
  let resources: CapturedResource[];
  let cluster: Cluster;
  const byName = (name: string) => findResource(resources, name);
  const dependsOn = (name: string, other: string) => byName(name).dependsOn.includes(byName(other).resource);
  const file = async (step: string, path: string) =>
    (await stepFiles(byName(step)))[path] ?? assert.fail(`${step}: no ${path}`);

  before(async () => {
    const stack = haStack();
    resources = await captureProgram((transformations) => {
      cluster = new Cluster("ha", { stack, secret: () => pulumi.secret("KEY") }, { transformations });
    });
  });

  it("runs kubeadm init on the first control plane once it is prepared", () => {
    assert.equal(byName("cp-1-kubeadm-init").type, STEP_TYPE);
    assert.ok(dependsOn("cp-1-kubeadm-init", "cp-1-configure-kubelet"));
    assert.match(String(runOf(byName("cp-1-kubeadm-init")).script), /kubeadm init --config/);
    assert.match(String(runOf(byName("cp-1-kubeadm-init")).deleteScript), /kubeadm reset --force/);
  });

  it("issues the bootstrap token afresh after init and before any join, from a root-only file", async () => {
    assert.ok(dependsOn("cp-1-bootstrap-token", "cp-1-kubeadm-init"));
    const token = await file("cp-1-bootstrap-token", "/etc/kubernetes/nodeforge/bootstrap-token");
    assert.equal(token.mode, "0600");
    assert.equal(token.secret, true);
    assert.equal(await isSecret(byName("cp-1-bootstrap-token").props.secretContents), true);
    assert.equal(token.content, FAKE_CLUSTER_PKI.bootstrapToken);
    const create = String(runOf(byName("cp-1-bootstrap-token")).script);
    assert.match(create, /apply --server-side --force-conflicts --field-manager=nodeforge -f - <<NF_EOF/);
    assert.match(create, /type: bootstrap\.kubernetes\.io\/token/);
  });

  it("joins the other control planes one at a time, after the token is issued", () => {
    assert.ok(dependsOn("cp-2-kubeadm-join", "cp-1-bootstrap-token"));
    assert.ok(dependsOn("cp-3-kubeadm-join", "cp-2-kubeadm-join"));
    assert.ok(!dependsOn("cp-2-kubeadm-join", "cp-3-kubeadm-join"));
  });

  it("joins workers after every control plane, in parallel with each other", () => {
    for (const worker of ["worker-1", "worker-2"]) {
      assert.ok(dependsOn(`${worker}-kubeadm-join`, "cp-3-kubeadm-join"), `${worker} after cp-3`);
      assert.ok(dependsOn(`${worker}-kubeadm-join`, `${worker}-configure-kubelet`));
    }
    assert.ok(!dependsOn("worker-2-kubeadm-join", "worker-1-kubeadm-join"));
    assert.ok(!dependsOn("worker-1-kubeadm-join", "worker-2-kubeadm-join"));
  });

  it("waits for every joined machine's Node on the first control plane; drains a leaver, and all on destroy", async () => {
    const registrations = byName("cp-1-node-registrations");
    // After the last control plane's join (which comes after the others') and every worker's.
    for (const machine of ["cp-3", "worker-1", "worker-2"]) {
      assert.ok(dependsOn("cp-1-node-registrations", `${machine}-kubeadm-join`));
    }
    assert.equal(registrations.parent, byName("cp-1").resource, "runs on the first control plane");
    const target = await outputValue(registrations.props.target as pulumi.Input<Record<string, unknown>>);
    assert.equal(target.host, "192.0.2.10");
    assert.equal(runOf(registrations).name, "node-registrations");
    const script = String(runOf(registrations).script);
    assert.match(script, /^ {2}for nf_name in cp-2 cp-3 worker-1 worker-2 ; do$/m);
    assert.match(script, /get node "\$nf_node"/);
    assert.match(script, /nf_wanted "\$nf_node" \|\| nf_drain_node "\$nf_node"/);
    const deleteScript = String(runOf(registrations).deleteScript);
    assert.match(deleteScript, /drain "\$1" --ignore-daemonsets/);
    assert.match(deleteScript, /delete node "\$1" /);
    // The first control plane drains nobody before itself: it is in neither list.
    assert.match(deleteScript, /^for nf_node in cp-2 cp-3 worker-1 worker-2 ; do$/m);
  });

  it("applies kube-proxy on the first control plane after every machine joined and registered", async () => {
    // After every control plane's upgrade step (nothing to do on a new cluster): kube-proxy never runs newer than
    // the API servers.
    assert.deepEqual(byName("cp-1-cluster-network").dependsOn, [byName("cp-3-certificate-renewal").resource]);
    assert.deepEqual(byName("cp-1-kubernetes-upgrade").dependsOn, [byName("cp-1-node-registrations").resource]);
    assert.match(
      String(runOf(byName("cp-1-cluster-network")).script),
      /kubectl --kubeconfig \/etc\/kubernetes\/admin\.conf apply --server-side/,
    );
    const manifest = await file("cp-1-cluster-network", "/etc/kubernetes/nodeforge/kube-proxy.yaml");
    assert.match(manifest.content, /kind: DaemonSet/);
  });

  it("keeps the token and the CA keys secret, in files only root can read", async () => {
    const secretFiles = [
      ["cp-1-kubeadm-init", "/etc/kubernetes/nodeforge/kubeadm-init.yaml"],
      ["cp-1-kubeadm-init", "/etc/kubernetes/pki/ca.key"],
      ["cp-1-kubeadm-init", "/etc/kubernetes/pki/sa.key"],
      ["cp-2-kubeadm-join", "/etc/kubernetes/nodeforge/kubeadm-join.yaml"],
      ["worker-1-kubeadm-join", "/etc/kubernetes/nodeforge/kubeadm-join.yaml"],
    ] as const;
    for (const [step, path] of secretFiles) {
      const found = await file(step, path);
      assert.equal(found.mode, "0600", `${step} ${path} mode`);
      assert.equal(found.secret, true, `${step} ${path} content is secret`);
      assert.equal(await isSecret(byName(step).props.secretContents), true);
    }
    const init = (await file(...secretFiles[0])).content;
    assert.match(init, new RegExp(`token: "${FAKE_CLUSTER_PKI.bootstrapToken}"`));
    const join = (await file(...secretFiles[3])).content;
    assert.ok(join.includes(FAKE_CLUSTER_PKI.caCertHash as string), "the join carries the CA cert hash");
    // A control plane joins with the CAs nodeforge wrote, never with certificates kubeadm init uploaded.
    assert.doesNotMatch(join, /certificateKey/);
    for (const cmd of resources.filter((r) => r.type === STEP_TYPE)) {
      const visible = [
        String(runOf(cmd).script),
        JSON.stringify(await outputValue(cmd.props.files as pulumi.Input<object>)),
        JSON.stringify(await outputValue(pulumi.output(runOf(cmd).triggers as pulumi.Input<string>[]))),
      ];
      for (const text of visible) {
        assert.ok(!text.includes(FAKE_CLUSTER_PKI.bootstrapToken as string), `${cmd.name}: no token outside secrets`);
        assert.ok(!text.includes(FAKE_CLUSTER_PKI.caKey as string), `${cmd.name}: no CA key outside secrets`);
      }
    }
    const ca = await file("cp-1-kubeadm-init", "/etc/kubernetes/pki/ca.crt");
    assert.equal(ca.mode, "0644");
    assert.equal(ca.secret, false, "a certificate is shown in previews");
  });

  it("exports the API endpoint and an admin kubeconfig as a secret", async () => {
    assert.equal(await outputValue(cluster.apiEndpoint), "https://192.0.2.100:6443");
    assert.equal(await isSecret(cluster.adminKubeconfig), true);
    assert.match(await outputValue(cluster.adminKubeconfig), /server: https:\/\/192\.0\.2\.100:6443/);
  });
});

describe("cluster bootstrap with kube-vip (mocks)", () => {
  let resources: CapturedResource[];
  const byName = (name: string) => findResource(resources, name);
  const stack = () =>
    haStack("  controlPlaneLoadBalancer:\n    type: kube-vip\n    address: 192.0.2.100\n    interface: eth0\n");

  before(async () => {
    const spec = stack();
    resources = await captureProgram((transformations) => {
      new Cluster("vip", { stack: spec, secret: () => pulumi.secret("KEY") }, { transformations });
    });
  });

  it("puts kube-vip's static pod on every control plane before kubeadm runs there, never on workers", async () => {
    for (const step of ["cp-1-kubeadm-init", "cp-2-kubeadm-join", "cp-3-kubeadm-join"]) {
      const found = (await stepFiles(byName(step)))["/etc/kubernetes/manifests/kube-vip.yaml"];
      assert.ok(found, `${step}: kube-vip's manifest`);
      assert.equal(found.mode, "0600");
      assert.match(
        found.content,
        /path: "\/etc\/kubernetes\/admin\.conf"/,
        `${step}: nodeforge's manifest mounts admin.conf`,
      );
      assert.match(found.content, /192\.0\.2\.100/);
    }
    for (const worker of ["worker-1", "worker-2"]) {
      const files = await stepFiles(byName(`${worker}-kubeadm-join`));
      assert.ok(!("/etc/kubernetes/manifests/kube-vip.yaml" in files), `${worker}: no kube-vip`);
    }
  });

  it("gives kube-vip super-admin.conf only while kubeadm init runs, and back even when init fails", () => {
    const script = kubeadmInitScript(stack(), stack().machines[0] as MachineSpec);
    const toSuper = script.indexOf("super-admin.conf\"#' /etc/kubernetes/manifests/kube-vip.yaml");
    const init = script.indexOf("kubeadm init --config");
    const back = script.lastIndexOf("admin.conf\"#' /etc/kubernetes/manifests/kube-vip.yaml");
    assert.ok(toSuper > 0 && toSuper < init && init < back, "switch, init, switch back");
    assert.match(
      script,
      /\|\| \{\n\s+nf_rc=\$\?\n\s+sed -i 's#path: "\/etc\/kubernetes\/super-admin\.conf"#path: "\/etc\/kubernetes\/admin\.conf"#'/,
    );
  });

  it("renders every bootstrap script so that it passes shellcheck and dash -n", () => {
    const base = {
      machine: "cp-1",
      step: "bootstrap-step",
      stateDir: "/var/lib/nodeforge",
      binDir: "/usr/local/bin",
      adminConf: "/etc/kubernetes/admin.conf",
    };
    const owned = { files: ["/etc/kubernetes/nodeforge/x"], directories: ["/etc/kubernetes/nodeforge"] };
    const scripts = {
      "bootstrap-token": { tokenFile: "/etc/kubernetes/nodeforge/bootstrap-token", ttlHours: 2 },
      "node-registrations": { nodes: ["cp-2", "worker-1"], listFile: "/var/lib/nodeforge/registered-nodes" },
      "node-registrations-delete": { nodes: ["cp-2", "worker-1"], listFile: "/var/lib/nodeforge/registered-nodes" },
      "kubeadm-reset": {
        owned,
        cniPaths: ["/etc/cni/net.d/10-flannel.conflist", "/run/flannel"],
        cniLinks: ["flannel.1", "cni0"],
      },
      "remove-files": { owned },
    };
    for (const [name, values] of Object.entries(scripts)) {
      assertCleanShell(name, render(`scripts/${name}.sh.hbs`, { ...base, ...values }));
    }
  });

  it("renders init and join scripts that pass shellcheck and dash -n: kube-vip or not, stacked etcd or not", () => {
    for (const spec of [stack(), haStack()]) {
      for (const stackedEtcd of [true, false]) {
        const [first, ...others] = spec.machines;
        assertCleanShell(`${spec.file} init`, kubeadmInitScript(spec, first as MachineSpec, stackedEtcd));
        for (const machine of others) {
          assertCleanShell(`${spec.file} ${machine.name} join`, kubeadmJoinScript(machine, stackedEtcd));
        }
      }
    }
  });

  describe("an init or join cut off part-way is finished by the next run", () => {
    it("init: skipped only once its stamp says it finished; leftovers skip exactly the checks that see them", () => {
      const script = kubeadmInitScript(stack(), stack().machines[0] as MachineSpec);
      assert.match(script, /^if \[ -f \/etc\/kubernetes\/admin\.conf \] && ! nf_changed kubeadm-init complete; then$/m);
      assert.match(script, /^nf_stamp kubeadm-init complete$/m);
      // Finished before (no stamp yet): kubeadm's last phases' work is in the cluster, so nothing is run again.
      assert.match(
        script,
        /get configmap\/kubeadm-config deployment\/coredns >\/dev\/null 2>&1; then\n {2}nf_stamp kubeadm-init complete\nfi/,
      );
      const checks = leftoverPreflightChecks({ init: true, controlPlane: true, stackedEtcd: true });
      assert.deepEqual(checks, [
        "Port-6443",
        "Port-10259",
        "Port-10257",
        "FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml",
        "FileAvailable--etc-kubernetes-manifests-kube-controller-manager.yaml",
        "FileAvailable--etc-kubernetes-manifests-kube-scheduler.yaml",
        "FileAvailable--etc-kubernetes-manifests-etcd.yaml",
        "Port-2379",
        "Port-2380",
        "DirAvailable--var-lib-etcd",
        "Port-10250",
      ]);
      assert.ok(script.includes(`nf_resume=${shellQuote(`--ignore-preflight-errors=${checks.join(",")}`)}`));
      // Leftovers are kubeadm's own files: admin.conf and its static pod manifests (kube-vip's is nodeforge's).
      assert.match(
        script,
        /^for nf_leftover in \/etc\/kubernetes\/admin\.conf \/etc\/kubernetes\/manifests\/kube-apiserver\.yaml .*\/etcd\.yaml; do$/m,
      );
      const external = kubeadmInitScript(stack(), stack().machines[0] as MachineSpec, false);
      assert.doesNotMatch(external, /etcd\.yaml|Port-2379|var-lib-etcd/);
    });

    it("join: a control plane whose kubelet joined finishes with kubeadm's control-plane phases; a worker is done", () => {
      const [, ...others] = haStack().machines;
      const controlPlane = others.find((m) => m.role === "control-plane") as MachineSpec;
      const worker = others.find((m) => m.role === "worker") as MachineSpec;
      const cpJoin = kubeadmJoinScript(controlPlane, true);
      assert.match(
        cpJoin,
        /^ {2}nf_run kubeadm join phase etcd-join --config \/etc\/kubernetes\/nodeforge\/kubeadm-join\.yaml$/m,
      );
      assert.match(cpJoin, /^ {2}nf_run kubeadm join phase control-plane-join all --config /m);
      assert.doesNotMatch(kubeadmJoinScript(controlPlane, false), /etcd-join/);
      const workerJoin = kubeadmJoinScript(worker, true);
      assert.doesNotMatch(workerJoin, /kubeadm join phase/);
      const workerChecks = leftoverPreflightChecks({ init: false, controlPlane: false, stackedEtcd: true });
      assert.deepEqual(workerChecks, [
        "FileAvailable--etc-kubernetes-pki-ca.crt",
        "Port-10250",
        "FileAvailable--etc-kubernetes-bootstrap-kubelet.conf",
      ]);
      // A worker's join leaves the TLS bootstrap kubeconfig and the CA it discovered.
      assert.match(
        workerJoin,
        /^for nf_leftover in \/etc\/kubernetes\/bootstrap-kubelet\.conf \/etc\/kubernetes\/pki\/ca\.crt; do$/m,
      );
      assert.ok(workerJoin.includes(`nf_resume=${shellQuote(`--ignore-preflight-errors=${workerChecks.join(",")}`)}`));
      for (const script of [cpJoin, workerJoin]) {
        assert.match(script, /^nf_stamp kubeadm-join complete$/m);
        // The TLS bootstrap kubeconfig holds the token: a join cut off before kubeadm removed it does not keep it.
        assert.match(script, /^ {2}rm -f \/etc\/kubernetes\/bootstrap-kubelet\.conf$/m);
      }
      // Finished before (no stamp yet): a control plane's Node carries kubeadm's control-plane label.
      assert.match(
        cpJoin,
        /get nodes -l node-role\.kubernetes\.io\/control-plane \\\n\s+-o name 2>\/dev\/null \| grep -qx node\/cp-2; then/,
      );
      assert.doesNotMatch(workerJoin, /node-role/);
    });
  });
});
