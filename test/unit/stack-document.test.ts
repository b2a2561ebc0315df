/**
 * A Cluster from a stack document (the stack file's content as an object) under Pulumi's mocks: the same resources
 * as from the file; machines' addresses and host keys given as Outputs reach the targets and the files once known.
 * (A bad value given that way: test/integration/composed-program.test.ts, under the real engine.)
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { Cluster, type StackDocument } from "../../modules";
import { captureProgram, findResource, outputValue, stepFiles, type CapturedResource } from "../harness/pulumi-mocks";
import { buildStack, stackYaml, TEST_HOST_KEY } from "../harness/stack-builder";

const KUBELET_ENV = "/etc/kubernetes/nodeforge-kubelet.env";

function documentOf(machines: number): StackDocument {
  return parse(stackYaml({ machines })) as StackDocument;
}

/** Resolves later, as another resource's output would. */
function later(value: string): pulumi.Output<string> {
  return pulumi.output(new Promise<string>((resolve) => setTimeout(() => resolve(value), 10)));
}

function capture(stack: ConstructorParameters<typeof Cluster>[1]["stack"]): Promise<CapturedResource[]> {
  return captureProgram((transformations) => {
    new Cluster("doc", { stack, secret: () => pulumi.secret("KEY") }, { transformations });
  });
}

describe("a Cluster from a stack document (mocks)", () => {
  it("a document with known values makes the same resources as the stack file", async () => {
    const fromDocument = await capture(documentOf(3));
    const fromSpec = await capture(buildStack({ machines: 3 }));
    assert.deepEqual(
      fromDocument.map((r) => `${r.type} ${r.name}`),
      fromSpec.map((r) => `${r.type} ${r.name}`),
    );
  });

  it("addresses and host keys from Outputs reach the targets and the files", async () => {
    const document = documentOf(2);
    const addresses = ["192.0.2.51", "192.0.2.52"];
    const machines = document.machines.map((m, i) => ({
      ...m,
      address: later(addresses[i]!),
      hostKey: later(TEST_HOST_KEY),
    }));
    const resources = await capture({ ...document, machines });
    for (const [i, name] of ["cp-1", "worker-1"].entries()) {
      const step = findResource(resources, `${name}-configure-kubelet`);
      const target = await outputValue(step.props.target as pulumi.Input<Record<string, unknown>>);
      assert.equal(target.host, addresses[i]);
      assert.equal(target.hostKey, TEST_HOST_KEY);
      const env = (await stepFiles(step))[KUBELET_ENV]!.content;
      assert.match(env, new RegExp(`--node-ip=${addresses[i]!.replace(/\./g, "\\.")}\\b`));
      assert.doesNotMatch(env, /198\.18\./, "no stand-in address in a file");
    }
    const init = (await stepFiles(findResource(resources, "cp-1-kubeadm-init")))[
      "/etc/kubernetes/nodeforge/kubeadm-init.yaml"
    ]!.content;
    assert.ok(init.includes('"192.0.2.51"') && !init.includes("198.18."));
  });
});
