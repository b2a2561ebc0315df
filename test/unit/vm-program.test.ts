/**
 * A stack with a hypervisor and VMs, as the Pulumi program registers it (mocks): the hypervisor's steps under a
 * Hypervisor component, one VmHostKeys resource, each VM a Node whose steps come after its VM step and pin the host
 * key generated for it; the VM's private host key only inside secrets.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { Cluster } from "../../modules/components";
import { projectRoot } from "../../modules/project-root";
import { loadStackFile } from "../../modules/stack";
import {
  captureProgram,
  findResource,
  isSecret,
  outputValue,
  stepFiles,
  VM_HOST_KEYS_TYPE,
  type CapturedResource,
} from "../harness/pulumi-mocks";

/** ssh2's key generator: the stack's SSH key, whose public half the VMs authorize. */
const { utils } = require("ssh2") as {
  utils: { generateKeyPairSync(type: "ed25519"): { private: string; public: string } };
};
const login = utils.generateKeyPairSync("ed25519");

describe("a cluster with VMs on a hypervisor (mocks)", () => {
  let resources: CapturedResource[];
  const byName = (name: string) => findResource(resources, name);

  before(async () => {
    const stack = loadStackFile(join(projectRoot(), "stacks", "example-vms.yaml"));
    resources = await captureProgram((transformations) => {
      new Cluster("mixed", { stack, secret: () => pulumi.secret(login.private) }, { transformations });
    });
  });

  it("registers the hypervisor as a component with its steps, and one VmHostKeys for the VMs", () => {
    const hypervisor = byName("hv-1");
    assert.equal(hypervisor.type, "nodeforge:vm:Hypervisor");
    assert.equal(hypervisor.parent, byName("mixed").resource);
    for (const step of ["hv-1-prepare-hypervisor", "hv-1-vm-worker-1", "hv-1-vm-worker-2"]) {
      assert.equal(byName(step).parent, hypervisor.resource, step);
    }
    const keys = resources.filter((r) => r.type === VM_HOST_KEYS_TYPE);
    assert.deepEqual(
      keys.map((k) => [k.name, k.props.vms]),
      [["mixed-vm-host-keys", ["worker-1", "worker-2"]]],
    );
  });

  it("runs each VM's first step after its VM step, and its VM step after the hypervisor is prepared", () => {
    assert.deepEqual(byName("worker-1-preflight").dependsOn, [byName("hv-1-vm-worker-1").resource]);
    assert.deepEqual(byName("hv-1-vm-worker-2").dependsOn, [byName("hv-1-prepare-hypervisor").resource]);
    // A machine's first step waits only for the cluster's recorded facts to pass their check.
    assert.deepEqual(byName("cp-1-preflight").dependsOn, [byName("mixed-facts").resource]);
    assert.deepEqual(byName("hv-1-prepare-hypervisor").dependsOn, [byName("mixed-facts").resource]);
  });

  it("pins each VM's generated host key on every one of its steps; the target stays secret", async () => {
    const vmStep = await stepFiles(byName("hv-1-vm-worker-1"));
    const userData = vmStep["/var/lib/nodeforge/vms/worker-1/user-data"]!;
    assert.equal(userData.secret, true);
    const publicKey = /ed25519_public: "(ssh-ed25519 [A-Za-z0-9+/=]+)"/.exec(userData.content)?.[1];
    assert.ok(publicKey, "user-data names the VM's public host key");
    assert.match(userData.content, /ed25519_private: "-----BEGIN OPENSSH PRIVATE KEY-----/);
    // The stack's SSH key's public half is what the VM authorizes.
    assert.ok(userData.content.includes(login.public.split(" ").slice(0, 2).join(" ")));
    for (const step of ["worker-1-preflight", "worker-1-kubeadm-join"]) {
      const resource = byName(step);
      assert.equal(await isSecret(resource.props.target), true);
      const target = await outputValue(resource.props.target as pulumi.Input<Record<string, unknown>>);
      assert.equal(target.hostKey, publicKey, step);
      assert.equal(target.host, "192.0.2.41");
    }
  });
});
