/**
 * External etcd wired into the program under Pulumi's mocks (3 etcd machines, 1 control plane, 1 worker): one
 * EtcdPki, an EtcdMember per etcd machine with its files, script and unit, kubeadm init after every member, with
 * `etcd.external` in its configuration and the client certificate on the control plane, and no secret anywhere it
 * could leak.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { parse as parseYamlDocuments } from "yaml";
import { Cluster } from "../../modules/components";
import { ETCD_MEMBER_PATHS, isEtcdSecretFile } from "../../modules/etcd";
import { DEFAULT_PINS } from "../../modules/pins";
import { parseStack } from "../../modules/stack";
import {
  captureProgram,
  findResource,
  ETCD_PKI_TYPE,
  FAKE_ETCD_PKI,
  isSecret,
  outputValue,
  runOf,
  STEP_TYPE,
  stepFiles,
  stepUnits,
  type CapturedResource,
} from "../harness/pulumi-mocks";
import { TEST_HOST_KEY } from "../harness/stack-builder";

const ETCD = ["etcd-1", "etcd-2", "etcd-3"];
const ENDPOINTS = ["https://192.0.2.31:2379", "https://192.0.2.32:2379", "https://192.0.2.33:2379"];
const EXTERNAL = "/etc/kubernetes/pki/etcd-external";
const INIT_CONFIG = "/etc/kubernetes/nodeforge/kubeadm-init.yaml";

function externalEtcdStack() {
  const yaml = [
    "cluster:",
    "  name: ext",
    '  kubernetesVersion: "1.36.4"',
    "etcd:",
    "  external:",
    "    machines:",
    ...ETCD.flatMap((name, i) => [
      `      - name: ${name}`,
      `        address: 192.0.2.${31 + i}`,
      "        os: debian-12",
      `        hostKey: ${TEST_HOST_KEY}`,
    ]),
    "machines:",
    ...[
      ["cp-1", "control-plane", "192.0.2.10"],
      ["worker-1", "worker", "192.0.2.20"],
    ].flatMap(([name, role, address]) => [
      `  - name: ${name}`,
      `    address: ${address}`,
      `    role: ${role}`,
      "    os: debian-12",
      `    hostKey: ${TEST_HOST_KEY}`,
    ]),
  ].join("\n");
  return parseStack(`${yaml}\n`, "ext.yaml");
}

/** Every private key the fake EtcdPki answers: none may reach a script or a trigger. */
const ETCD_SECRETS = [FAKE_ETCD_PKI.caKey, FAKE_ETCD_PKI.clientKey, ...ETCD.map(FAKE_ETCD_PKI.memberKey)];

describe("external etcd (mocks, 3 etcd machines + 1 control plane + 1 worker)", () => {
  let resources: CapturedResource[];
  let cluster: Cluster;
  const byName = (name: string) => findResource(resources, name);
  /** The content of the file at `path` of the step resource `step`. */
  const content = async (step: string, path: string) =>
    (await stepFiles(byName(step)))[path]?.content ?? assert.fail(`${step}: no ${path}`);

  before(async () => {
    const stack = externalEtcdStack();
    resources = await captureProgram((transformations) => {
      cluster = new Cluster("ext", { stack, secret: () => pulumi.secret("KEY") }, { transformations });
    });
  });

  it("creates one EtcdPki for the cluster, for the three members", () => {
    const pkis = resources.filter((r) => r.type === ETCD_PKI_TYPE);
    assert.deepEqual(
      pkis.map((r) => r.name),
      ["ext-etcd-pki"],
    );
    const pki = byName("ext-etcd-pki");
    assert.equal(pki.parent, cluster);
    assert.deepEqual(pki.props.members, [
      { name: "etcd-1", address: "192.0.2.31" },
      { name: "etcd-2", address: "192.0.2.32" },
      { name: "etcd-3", address: "192.0.2.33" },
    ]);
  });

  it("creates an EtcdMember component per etcd machine, under the Cluster, and no Node for them", () => {
    const members = resources.filter((r) => r.type === "nodeforge:etcd:EtcdMember");
    assert.deepEqual(
      members.map((r) => r.name),
      ETCD,
    );
    for (const member of members) assert.equal(member.parent, cluster);
    assert.deepEqual(
      cluster.etcdMembers.map((m) => m.machineName),
      ETCD,
    );
    assert.deepEqual(
      resources.filter((r) => r.type === "nodeforge:node:Node").map((r) => r.name),
      ["cp-1", "worker-1"],
    );
  });

  it("runs one etcd-member step per member, with its files, script, delete script and unit", async () => {
    for (const name of ETCD) {
      const member = byName(name).resource;
      const children = resources.filter((r) => r.parent === member);
      for (const child of children)
        assert.ok(child.name.startsWith(`${name}-`), `${child.name} is named after ${name}`);
      const step = byName(`${name}-etcd-member`);
      assert.equal(step.type, STEP_TYPE);
      assert.equal(step.parent, member);
      assert.deepEqual(
        children.map((c) => c.name),
        [`${name}-etcd-member`],
        "one resource: files, script, unit",
      );
      const create = await outputValue(runOf(step).script as pulumi.Input<string>);
      assert.match(create, new RegExp(`nf_machine=${name}`));
      // The pinned etcd release (3.6, which kubeadm accepts as external etcd), for the machine's arch.
      const { version, sha256 } = DEFAULT_PINS.etcd;
      const tarball = `https://github.com/etcd-io/etcd/releases/download/v${version}/etcd-v${version}-linux-amd64.tar.gz`;
      assert.ok(create.includes(`nf_fetch ${tarball} ${sha256.amd64} `), "fetches the pinned release");
      assert.match(String(runOf(step).deleteScript), /rm -rf \/var\/lib\/etcd\/ext/);
      assert.deepEqual(Object.keys(await stepFiles(step)), [...ETCD_MEMBER_PATHS]);
      assert.deepEqual(await stepUnits(step), { "nodeforge-etcd.service": { enabled: true, active: true } });
    }
  });

  it("writes the keys root-only and secret, the certificates from the EtcdPki outputs", async () => {
    for (const name of ETCD) {
      const step = `${name}-etcd-member`;
      const files = await stepFiles(byName(step));
      for (const path of ETCD_MEMBER_PATHS) {
        const file = files[path]!;
        assert.equal(file.mode, isEtcdSecretFile(path) ? "0600" : "0644", `${path} mode`);
        assert.equal(file.secret, isEtcdSecretFile(path), `${path}: content secret`);
      }
      assert.equal(await isSecret(byName(step).props.secretContents), true);
      assert.equal(await content(step, "/etc/etcd/pki/member.key"), FAKE_ETCD_PKI.memberKey(name));
      assert.equal(await content(step, "/etc/etcd/pki/member.crt"), FAKE_ETCD_PKI.memberCert(name));
      assert.equal(await content(step, "/etc/etcd/pki/client.key"), FAKE_ETCD_PKI.clientKey);
      assert.equal(await content(step, "/etc/etcd/pki/ca.crt"), FAKE_ETCD_PKI.caCert);
      const config = await content(step, "/etc/etcd/nodeforge-etcd.yaml");
      assert.ok(config.includes("etcd-1=https://192.0.2.31:2380"), "the initial cluster lists every member");
    }
  });

  it("runs kubeadm init after every member's step", () => {
    const init = byName("cp-1-kubeadm-init");
    for (const name of ETCD) {
      assert.ok(init.dependsOn.includes(byName(`${name}-etcd-member`).resource), `kubeadm init after ${name}`);
    }
    assert.ok(init.dependsOn.includes(byName("cp-1-configure-kubelet").resource));
  });

  it("configures kubeadm for the external cluster: its three endpoints and the client files", async () => {
    const init = await content("cp-1-kubeadm-init", INIT_CONFIG);
    assert.match(init, /^ {2}external:$/m);
    const cluster = parseYamlDocuments(init.split(/^---$/m).find((d) => /kind: ClusterConfiguration/.test(d)) ?? "");
    assert.deepEqual(cluster.etcd, {
      external: {
        endpoints: ENDPOINTS,
        caFile: `${EXTERNAL}/ca.crt`,
        certFile: `${EXTERNAL}/client.crt`,
        keyFile: `${EXTERNAL}/client.key`,
      },
    });
  });

  it("places the etcd CA and the client certificate and key on the control plane, not on workers", async () => {
    const files = await stepFiles(byName("cp-1-kubeadm-init"));
    assert.equal(files[`${EXTERNAL}/ca.crt`]?.content, FAKE_ETCD_PKI.caCert);
    assert.equal(files[`${EXTERNAL}/ca.crt`]?.mode, "0644");
    assert.equal(files[`${EXTERNAL}/client.crt`]?.content, FAKE_ETCD_PKI.clientCert);
    assert.equal(files[`${EXTERNAL}/client.crt`]?.mode, "0644");
    assert.equal(files[`${EXTERNAL}/client.key`]?.mode, "0600");
    assert.equal(files[`${EXTERNAL}/client.key`]?.secret, true);
    assert.equal(files[`${EXTERNAL}/client.key`]?.content, FAKE_ETCD_PKI.clientKey);
    const join = await stepFiles(byName("worker-1-kubeadm-join"));
    assert.deepEqual(
      Object.keys(join).filter((path) => path.includes("etcd")),
      [],
    );
    assert.deepEqual(
      resources.filter((r) => r.name.startsWith("worker-1-") && r.name.includes("etcd")).map((r) => r.name),
      [],
    );
  });

  it("writes no stacked etcd CA", async () => {
    const files = await stepFiles(byName("cp-1-kubeadm-init"));
    assert.deepEqual(
      Object.keys(files).filter((path) => /\/pki\/etcd\/ca\./.test(path)),
      [],
    );
    assert.ok("/etc/kubernetes/pki/ca.key" in files, "the cluster CA is");
  });

  it("puts no secret in any script or trigger", async () => {
    const commands = resources.filter((r) => r.type === STEP_TYPE);
    assert.ok(commands.length > 0);
    for (const cmd of commands) {
      for (const field of ["script", "deleteScript"]) {
        const line = String(await outputValue(cmd.props[field] as pulumi.Input<string>));
        for (const secret of ETCD_SECRETS) assert.ok(!line.includes(secret), `${cmd.name}: ${field} has no key`);
        assert.ok(!line.includes("TEST ETCD"), `${cmd.name}: ${field} carries no PKI material`);
      }
      for (const file of Object.values(await outputValue(cmd.props.files as pulumi.Input<object>))) {
        for (const secret of ETCD_SECRETS) assert.ok(!JSON.stringify(file).includes(secret), `${cmd.name}: files`);
      }
      for (const trigger of runOf(cmd).triggers as unknown[]) {
        const value = String(await outputValue(trigger as pulumi.Output<string>));
        for (const secret of ETCD_SECRETS) assert.ok(!value.includes(secret), `${cmd.name}: triggers`);
      }
    }
  });
});
