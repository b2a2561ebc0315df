/**
 * A cluster's recorded facts (ClusterFacts) under the real Pulumi CLI: once a stack has recorded the version it runs
 * and its fixed settings, `pulumi preview` refuses a downgrade and a changed pod CIDR with the reason, naming the
 * stack file, the path in it and the versions allowed, and lets the next version through. No machine is needed: the
 * facts are made first, and the machine steps after them fail at once on a private key that is none. A skipped minor needs three pinned minors; the unit test
 * (test/unit/cluster-facts.test.ts) checks it with a third.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { engineStack, type EngineStack } from "../harness/pulumi-engine";
import { literal } from "../harness/regexp";
import { stackYaml } from "../harness/stack-builder";

const NO_KEY = "not a key: nothing here connects to a machine";

describe("recorded cluster facts refuse what a running cluster cannot take, at preview", { timeout: 300_000 }, () => {
  let engine: EngineStack;
  after(async () => engine?.remove());

  test("a downgrade and a CIDR change are refused naming the file and path; the next version previews", async () => {
    engine = await engineStack(stackYaml({ machines: 2, kubernetesVersion: "1.35.8" }), NO_KEY);
    // The facts are the first resource made; every machine step waits for them, and fails here at once (no key).
    await engine.up().then(
      () => assert.fail("pulumi up reached machines without a key"),
      () => undefined,
    );
    engine.writeStackFile(stackYaml({ machines: 2, kubernetesVersion: "1.35.1" }));
    const down = await engine.preview().then(
      () => assert.fail("a downgrade previewed"),
      (error: Error) => error.message,
    );
    assert.match(
      down,
      new RegExp(
        `${literal(engine.stackFile)}: cluster\\.kubernetesVersion: '1\\.35\\.1' ` +
          "from the running 1\\.35\\.8 is a downgrade \\(kubeadm cannot roll a cluster back\\); allowed: 1\\.36\\.3, 1\\.36\\.4",
      ),
    );

    engine.writeStackFile(stackYaml({ machines: 2, kubernetesVersion: "1.36.3", extra: "  podCIDR: 10.200.0.0/16" }));
    const cidr = await engine.preview().then(
      () => assert.fail("a pod CIDR change previewed"),
      (error: Error) => error.message,
    );
    assert.match(cidr, /cluster\.podCIDR: '10\.200\.0\.0\/16' replaces '10\.244\.0\.0\/16', which cannot change/);
    assert.doesNotMatch(cidr, /kubernetesVersion/, "1.35.8 -> 1.36.3 is allowed");

    engine.writeStackFile(stackYaml({ machines: 2, kubernetesVersion: "1.36.3" }));
    const next = await engine.preview();
    assert.ok(
      next.operations.some((o) => o.name === "test-facts" && o.op === "update"),
      "the next minor previews as an update of the recorded facts",
    );
  });
});
