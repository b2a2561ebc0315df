/**
 * The real kubelet (v1.36.3, built from the Kubernetes Go module by .ci/install-kubernetes) on a real systemd
 * machine (systemd-nspawn), installed and configured by nodeforge under the real `pulumi up`: the lab's mirror
 * serves the build, the stack file names its checksum (`artifacts.sha256`), install-kubelet verifies it. Started
 * standalone with nodeforge's own drop-in (kubeadm's part, the API server, is issue 10's next step), it runs a static
 * pod on the containerd nodeforge configured: the pause image from the module's pause.c, the systemd cgroup driver.
 * This host has cgroup v1, which the kubelet refuses by its own default (that error is checked too), and no process
 * here may lower an OOM score (no CAP_SYS_RESOURCE), which makes runc fail every pod sandbox ("can't get final
 * child's PID from pipe: EOF") unless containerd restricts the adjustment: the stack says
 * `kubelet.failCgroupV1: false` and `containerd.restrictOOMScoreAdj: true`.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { KUBELET_CONFIG_DIR } from "../../modules/steps/constants";
import { ensurePauseImage, KUBERNETES_BUILD_VERSION, requireBuiltKubelet } from "../harness/kubernetes-build";
import { labStackYaml } from "../harness/lab-stack";
import { useMachines, type Machine } from "../harness/machines";
import { inMachine } from "../harness/provision";
import { engineStack, type EngineStack } from "../harness/pulumi-engine";
import { ensureRootfs } from "../harness/rootfs";
import { ensureTinyImage } from "../harness/tiny-image";

const BASE_CONFIG = "/var/tmp/kubelet-standalone.yaml";
const MANIFESTS = "/var/tmp/kubelet-manifests";
const UNIT = "kubelet-standalone";

/** What kubeadm's config.yaml would hold, minus the API server: static pods from MANIFESTS, /configz readable. */
const STANDALONE = [
  "apiVersion: kubelet.config.k8s.io/v1beta1",
  "kind: KubeletConfiguration",
  `staticPodPath: ${MANIFESTS}`,
  "authentication: { anonymous: { enabled: true }, webhook: { enabled: false } }",
  "authorization: { mode: AlwaysAllow }",
  "",
].join("\n");

/** The test's own drop-in after nodeforge's: anonymous reads of /configz, for the test only. */
const ANONYMOUS_DROP_IN = [
  "apiVersion: kubelet.config.k8s.io/v1beta1",
  "kind: KubeletConfiguration",
  "authentication: { anonymous: { enabled: true } }",
  "",
].join("\n");

const POD = [
  "apiVersion: v1",
  "kind: Pod",
  "metadata: { name: hello, namespace: default }",
  "spec:",
  // No CNI plugin yet (issue 10's next step): like kubeadm's own static pods, it runs in the host's network.
  "  hostNetwork: true",
  "  containers:",
  "    - name: hello",
  "      image: docker.io/nodeforge/tiny:test",
  "      imagePullPolicy: Never",
  '      command: ["/bin/sh", "-c", "echo started; exec sleep 3600"]',
  "",
].join("\n");

/**
 * A pod in its own network namespace. Its network comes from the CNI reference plugins nodeforge installed into
 * /opt/cni/bin (the real containernetworking/plugins build the mirror serves): containerd runs `loopback` for every
 * sandbox and the conflist below chains `bridge` + `host-local` + `portmap`, as flannel's own configuration does.
 */
const NETWORKED_POD = [
  "apiVersion: v1",
  "kind: Pod",
  "metadata: { name: networked, namespace: default }",
  "spec:",
  "  containers:",
  "    - name: networked",
  "      image: docker.io/nodeforge/tiny:test",
  "      imagePullPolicy: Never",
  '      command: ["/bin/sh", "-c", "ip -4 -o addr show; exec sleep 3600"]',
  "",
].join("\n");

const POD_SUBNET = "10.244.7.0/24";

/** What a CNI plugin's installer writes to /etc/cni/net.d; here the test is that installer. */
const CONFLIST = JSON.stringify({
  cniVersion: "1.0.0",
  name: "lab",
  plugins: [
    {
      type: "bridge",
      bridge: "cni-lab0",
      isGateway: true,
      ipMasq: false,
      ipam: { type: "host-local", ranges: [[{ subnet: POD_SUBNET }]] },
    },
    { type: "portmap", capabilities: { portMappings: true } },
  ],
});

/** Starts the installed kubelet as a transient unit with nodeforge's drop-ins and per-node flags. */
function startKubelet(machine: Machine): Promise<string> {
  return inMachine(
    machine,
    // The env file is systemd's EnvironmentFile syntax: its one value is the flags, split on spaces as systemd does.
    "args=$(sed -n 's/^KUBELET_NODEFORGE_ARGS=//p' /etc/kubernetes/nodeforge-kubelet.env) && " +
      `systemd-run --quiet --unit=${UNIT} --property=Restart=no ` +
      `/usr/local/bin/kubelet --config=${BASE_CONFIG} --config-dir=${KUBELET_CONFIG_DIR} $args`,
  );
}

async function until(machine: Machine, command: string, what: string, seconds = 120): Promise<string> {
  for (let waited = 0; ; waited++) {
    const result = await machine.run(command);
    if (result.code === 0 && result.stdout.trim() !== "") return result.stdout;
    if (waited >= seconds) {
      const log = await machine.run(`journalctl -u ${UNIT} --no-pager -n 40`);
      assert.fail(`${machine.name}: ${what} within ${seconds} s:\n${log.stdout}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

describe(`the real kubelet v${KUBERNETES_BUILD_VERSION} on a real machine`, { timeout: 900_000 }, () => {
  const lab = useMachines(1, { names: ["node-1"] });
  let engine: EngineStack | undefined;
  after(async () => {
    await engine?.remove();
  });
  const machine = (): Machine => lab().machines[0]!;

  test("pulumi up installs the build: its checksum verified, its version the pinned one", async () => {
    requireBuiltKubelet("amd64");
    const yaml = labStackYaml(lab(), {
      kubernetesVersion: KUBERNETES_BUILD_VERSION,
      // The machine is a container on a cgroup v1 host that may not lower OOM scores: both settings say so.
      extra:
        "kubelet:\n  maxPods: 42\n  failCgroupV1: false\n  evictionHard:\n    memory.available: 150Mi\n" +
        "containerd:\n  restrictOOMScoreAdj: true\n",
    });
    engine = await engineStack(yaml, lab().clientPrivateKey);
    await engine.up();
    assert.equal(
      (await inMachine(machine(), "/usr/local/bin/kubelet --version")).trim(),
      `Kubernetes v${KUBERNETES_BUILD_VERSION}`,
    );
    assert.match(await inMachine(machine(), `cat ${KUBELET_CONFIG_DIR}/10-nodeforge.conf`), /^failCgroupV1: false$/m);
    // containerd with systemd's own open-files default (as containerd 2's unit has it), not the package's infinity.
    const limits = await inMachine(machine(), "systemctl show containerd.service -p LimitNOFILESoft -p LimitNOFILE");
    assert.match(limits, /^LimitNOFILESoft=1024$/m);
    assert.match(limits, /^LimitNOFILE=524288$/m);
  });

  test("by its own default it refuses a cgroup v1 host, with its own words (on cgroup v2: starts)", async (t) => {
    const cgroupV2 = (await inMachine(machine(), "stat -fc %T /sys/fs/cgroup")).trim() === "cgroup2fs";
    if (cgroupV2) t.skip("this host has cgroup v2: the kubelet's cgroup v1 refusal cannot show here");
    if (cgroupV2) return;
    const result = await machine().run(
      `printf '%s' '${STANDALONE}' > ${BASE_CONFIG} && timeout 60 /usr/local/bin/kubelet --config=${BASE_CONFIG} 2>&1`,
    );
    assert.notEqual(result.code, 0);
    assert.match(result.stdout, /kubelet is configured to not run on a host using cgroup v1/);
  });

  test("with nodeforge's drop-in it runs a static pod on nodeforge's containerd, systemd cgroups", async () => {
    const rootfs = await ensureRootfs();
    const images = [await ensurePauseImage("amd64"), await ensureTinyImage(rootfs)];
    for (const [i, image] of images.entries()) {
      machine().copyIn(image.path, `/var/tmp/image-${i}.tar`);
      await inMachine(machine(), `ctr -n k8s.io image import /var/tmp/image-${i}.tar >/dev/null`);
    }
    await inMachine(machine(), `mkdir -p ${MANIFESTS} && printf '%s' '${POD}' > ${MANIFESTS}/hello.yaml`);
    const started = Date.now();
    await startKubelet(machine());
    try {
      // Two tasks: the pod's pause (sandbox) container and its hello container, both running.
      await until(
        machine(),
        "ctr -n k8s.io tasks ls | awk 'NR > 1 && $3 == \"RUNNING\"' | wc -l | grep -x 2",
        "the static pod's sandbox and container running",
      );
      console.log(`static pod running ${((Date.now() - started) / 1000).toFixed(1)} s after the kubelet started`);
      const logs = await until(
        machine(),
        "cat /var/log/pods/default_hello-node-1_*/hello/0.log 2>/dev/null",
        "the container's output",
      );
      assert.match(logs, /stdout F started/);
      // The systemd cgroup driver: the pod lives in a kubepods slice systemd manages.
      assert.equal((await inMachine(machine(), "systemctl is-active kubepods.slice")).trim(), "active");
      // nodeforge's drop-in turns anonymous requests off over a base file that allows them: the kubelet refuses.
      const anonymous = await machine().run("curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1:10250/configz");
      assert.equal(anonymous.stdout.trim(), "401", "an anonymous request to the kubelet's API is refused");
      // A later drop-in of the test's own lets it read /configz (the kubelet merges drop-ins in name order).
      await inMachine(
        machine(),
        `printf '%s' '${ANONYMOUS_DROP_IN}' > ${KUBELET_CONFIG_DIR}/99-test-configz.conf && ` +
          `systemctl stop ${UNIT} && (systemctl reset-failed ${UNIT} 2>/dev/null; true)`,
      );
      await startKubelet(machine());
      // The kubelet's effective configuration: nodeforge's drop-in merged over the base file.
      const configz = JSON.parse(
        await until(machine(), "curl -sfk https://127.0.0.1:10250/configz", "the kubelet's /configz"),
      ) as { kubeletconfig: Record<string, unknown> };
      const config = configz.kubeletconfig;
      assert.equal(config.maxPods, 42);
      assert.equal(config.cgroupDriver, "systemd");
      assert.equal(config.containerRuntimeEndpoint, "unix:///run/containerd/containerd.sock");
      assert.deepEqual(config.clusterDNS, ["10.96.0.10"]);
      assert.equal(config.failCgroupV1, false);
      assert.equal(config.rotateCertificates, true, "the kubelet renews its client certificate itself");
      // The stack's one eviction threshold, and the kubelet's defaults for the others: the base file has none, so
      // the kubelet fills in its defaults and the drop-in's map is merged over them (mergeDefaultEvictionSettings,
      // which applies to the base file only, is not needed).
      const eviction = config.evictionHard as Record<string, string>;
      assert.equal(eviction["memory.available"], "150Mi");
      assert.equal(eviction["nodefs.available"], "10%");
      assert.equal(eviction["imagefs.available"], "15%");
    } finally {
      await machine().run(
        `systemctl stop ${UNIT}; systemctl reset-failed ${UNIT} 2>/dev/null; rm -f ${KUBELET_CONFIG_DIR}/99-test-configz.conf; true`,
      );
    }
  });

  test("a pod with its own network gets an address from the CNI reference plugins nodeforge installed", async () => {
    const plugins = await inMachine(machine(), "ls /opt/cni/bin");
    for (const plugin of ["loopback", "bridge", "host-local", "portmap"])
      assert.match(plugins, new RegExp(`^${plugin}$`, "m"));
    // The real build, not a double: a CNI plugin answers the VERSION command with the versions it speaks.
    const about = await inMachine(machine(), "CNI_COMMAND=VERSION /opt/cni/bin/bridge </dev/null");
    assert.match(about, /"supportedVersions":\[[^\]]*"1\.0\.0"/);
    await inMachine(
      machine(),
      `mkdir -p ${MANIFESTS} /etc/cni/net.d && printf '%s' '${CONFLIST}' > /etc/cni/net.d/10-lab.conflist && ` +
        `rm -f ${MANIFESTS}/hello.yaml && printf '%s' '${NETWORKED_POD}' > ${MANIFESTS}/networked.yaml`,
    );
    await startKubelet(machine());
    try {
      const logs = await until(
        machine(),
        "cat /var/log/pods/default_networked-node-1_*/networked/0.log 2>/dev/null",
        "the networked pod's output",
      );
      // The pod's own eth0 with an address from host-local's range; the node's bridge is its gateway.
      assert.match(logs, /eth0\s+inet 10\.244\.7\.\d+\/24/);
      assert.match(await inMachine(machine(), "ip -4 -o addr show cni-lab0"), /inet 10\.244\.7\.1\/24/);
    } finally {
      await machine().run(`systemctl stop ${UNIT}; systemctl reset-failed ${UNIT} 2>/dev/null; true`);
    }
  });

  test("pulumi destroy afterwards: containerd and the kubelet gone, though pods ran", async () => {
    await inMachine(
      machine(),
      `rm -rf ${MANIFESTS} ${BASE_CONFIG} /var/tmp/image-*.tar /etc/cni /var/lib/cni && ip link delete cni-lab0`,
    );
    await (engine ?? assert.fail("no stack: the first test failed")).destroy();
    await inMachine(machine(), "test ! -e /usr/local/bin/kubelet && test ! -e /etc/containerd/config.toml");
    // The CNI plugins nodeforge added, and their directories (the machine had none).
    await inMachine(machine(), "test ! -e /opt/cni");
    await inMachine(machine(), "! dpkg-query -W -f='${db:Status-Status}' containerd | grep -qx installed");
    // The pod's tasks were stopped and their mounts undone, so containerd's state could go too.
    await inMachine(machine(), 'test ! -e /run/containerd && test -z "$(ls -A /var/lib/containerd)"');
    await inMachine(machine(), "! pgrep -x containerd-shim && ! grep -q ' /run/containerd/' /proc/self/mounts");
  });
});
