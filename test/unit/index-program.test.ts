/** index.ts, the program `pulumi up` runs: stack file from config, secrets from config, outputs. */
import assert from "node:assert/strict";
import { test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { installMocks, outputValue, registered, STEP_TYPE } from "../harness/pulumi-mocks";

test("index.ts loads the configured stack file and registers every machine's steps", async () => {
  installMocks();
  pulumi.runtime.setAllConfig(
    { "nodeforge:stackFile": "stacks/example-baremetal.yaml", "nodeforge:sshPrivateKey": "KEY" },
    ["nodeforge:sshPrivateKey"],
  );
  const program = (await import("../../index")) as { nodes: unknown; kubernetesVersion: string };
  assert.equal(program.kubernetesVersion, "1.36.4");
  assert.deepEqual(await outputValue(program.nodes as pulumi.Input<unknown>), [
    { name: "cp-1", role: "control-plane", address: "192.0.2.10" },
    { name: "worker-1", role: "worker", address: "192.0.2.21" },
    { name: "worker-2", role: "worker", address: "192.0.2.22" },
  ]);
  // The mock engine registers asynchronously: wait (bounded) until the last machine's last step is in.
  const commands = () => registered.filter((r) => r.type === STEP_TYPE).map((r) => r.name);
  for (let i = 0; i < 100 && !commands().includes("worker-2-configure-kubelet"); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  for (const machine of ["cp-1", "worker-1", "worker-2"]) {
    assert.ok(commands().includes(`${machine}-install-containerd`), `${machine}-install-containerd registered`);
  }
});
