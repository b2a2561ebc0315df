/**
 * What may change between two runs of a cluster (modules/stack/transition.ts) and the ClusterFacts provider's check
 * that refuses the rest at preview: versions one minor at a time and never down, the allowed ones named; settings
 * fixed for the cluster's life.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { clusterFactsProvider } from "../../modules/components/cluster-facts";
import { DEFAULT_PINS, type Pins } from "../../modules/pins";
import { allowedUpgrades, checkTransition, clusterFacts, versionChangeIssue } from "../../modules/stack";
import { buildStack } from "../harness/stack-builder";

/** The default pins with a 1.37 release added (same checksums: only the version list matters here). */
const withNext: Pins = {
  ...DEFAULT_PINS,
  kubernetes: { ...DEFAULT_PINS.kubernetes, "1.37.1": DEFAULT_PINS.kubernetes["1.36.4"]! },
};

describe("a cluster's version moves one minor at a time, never down", () => {
  it("allows the same minor's later patches and the next minor's, among the pinned versions", () => {
    assert.deepEqual(allowedUpgrades("1.35.1", withNext), ["1.35.1", "1.35.8", "1.36.3", "1.36.4"]);
    assert.deepEqual(allowedUpgrades("1.36.3", withNext), ["1.36.3", "1.36.4", "1.37.1"]);
    assert.equal(versionChangeIssue("new.yaml", "1.35.8", "1.36.3"), undefined);
    assert.equal(versionChangeIssue("new.yaml", "1.36.3", "1.36.3"), undefined);
  });

  it("refuses a skipped minor, naming the versions allowed", () => {
    const issue = versionChangeIssue("new.yaml", "1.35.8", "1.37.1", withNext);
    assert.deepEqual(issue, {
      file: "new.yaml",
      path: "cluster.kubernetesVersion",
      message:
        "'1.37.1' from the running 1.35.8 skips a minor version (kubeadm upgrades one minor at a time); " +
        "allowed: 1.36.3, 1.36.4",
    });
  });

  it("refuses a downgrade, of a minor or of a patch", () => {
    assert.match(versionChangeIssue("new.yaml", "1.36.3", "1.35.8")!.message, /a downgrade .*allowed: 1\.36\.4$/);
    assert.match(versionChangeIssue("new.yaml", "1.35.8", "1.35.1")!.message, /a downgrade/);
    assert.match(versionChangeIssue("new.yaml", "1.36.4", "1.36.3")!.message, /allowed: none \(no later version/);
  });
});

describe("settings fixed for a cluster's life", () => {
  const base = buildStack({ machines: 2, kubernetesVersion: "1.35.8" });
  it("a version step and other settings pass; a CIDR, name or etcd change is refused with the path", () => {
    const next = buildStack({ machines: 2, kubernetesVersion: "1.36.3" });
    assert.deepEqual(checkTransition(base, next), []);
    const moved = { ...next, cluster: { ...next.cluster, podCIDR: "10.200.0.0/16", name: "other" } };
    assert.deepEqual(
      checkTransition(base, moved).map((i) => `${i.path}: ${i.message}`),
      [
        "cluster.name: 'other' replaces 'test', which cannot change on a running cluster: the cluster's certificates and kubeconfig name it",
        `cluster.podCIDR: '10.200.0.0/16' replaces '${base.cluster.podCIDR}', which cannot change on a running cluster: every node's pod range and the CNI's network are carved from it`,
      ],
    );
  });

  it("the provider's check: nothing recorded passes; a refused step fails naming the file and the path", async () => {
    const facts = clusterFacts(base);
    const first = await clusterFactsProvider.check({}, { file: "a.yaml", ...facts });
    assert.equal(first.failures, undefined);
    const same = await clusterFactsProvider.check({ file: "a.yaml", ...facts }, { file: "a.yaml", ...facts });
    assert.deepEqual(same.failures, []);
    const down = { ...facts, kubernetesVersion: "1.35.1" };
    const refused = await clusterFactsProvider.check({ file: "a.yaml", ...facts }, { file: "b.yaml", ...down });
    assert.deepEqual(
      refused.failures?.map((f) => f.property),
      ["kubernetesVersion"],
    );
    assert.match(
      refused.failures![0]!.reason,
      /^b\.yaml: cluster\.kubernetesVersion: '1\.35\.1' from the running 1\.35\.8 is a downgrade/,
    );
  });
});

describe("machines and versions change in separate runs", () => {
  it("a machine joining in the run that changes the version is refused, naming it; either alone passes", () => {
    const base = buildStack({ machines: 2, kubernetesVersion: "1.35.8" });
    const grown = buildStack({ machines: 3, kubernetesVersion: "1.35.8" });
    const upgraded = buildStack({ machines: 2, kubernetesVersion: "1.36.3" });
    const both = buildStack({ machines: 3, kubernetesVersion: "1.36.3" });
    assert.deepEqual(checkTransition(base, grown), []);
    assert.deepEqual(checkTransition(base, upgraded), []);
    const shrunk = buildStack({ machines: 1, kubernetesVersion: "1.36.3" });
    assert.deepEqual(checkTransition(base, shrunk), [], "a machine leaving during an upgrade is no newer kubelet");
    assert.deepEqual(
      checkTransition(base, both).map((i) => `${i.path}: ${i.message}`),
      [
        "machines: worker-2 would join while the cluster moves from 1.35.8 to 1.36.3: add machines and change the version in separate runs",
      ],
    );
  });
});
