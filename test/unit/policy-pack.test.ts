/**
 * The version skew window of nodeforge's policy pack (modules/policy-pack/kubelet-version-skew.ts) at its edges; the
 * pack as a whole runs under the real Pulumi CLI in test/integration/policy-pack.test.ts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { skewProblem, version } from "../../modules/policy-pack/kubelet-version-skew";

const v = (text: string) => version(text) ?? assert.fail(`${text} is no version`);

test("a kubelet may be up to 3 minor versions older than the API server, never newer", () => {
  for (const kubelet of ["1.33.0", "1.34.2", "1.36.0", "1.36.9"])
    assert.equal(skewProblem(v(kubelet), [v("1.36.4")]), undefined);
  assert.equal(
    skewProblem(v("1.32.9"), [v("v1.36.4")]),
    "kubelet 1.32.9 is more than 3 minor versions older than kube-apiserver 1.36.4",
  );
  assert.equal(skewProblem(v("1.37.0"), [v("1.36.4")]), "kubelet 1.37.0 is newer than kube-apiserver 1.36.4");
  assert.match(skewProblem(v("2.36.0"), [v("1.36.4")]) ?? "", /differ in their major version/);
});

test("with API servers of two releases, the oldest bounds the newest kubelet and the newest the oldest", () => {
  const apiServers = [v("1.35.2"), v("1.36.4")];
  assert.equal(skewProblem(v("1.35.0"), apiServers), undefined);
  assert.equal(skewProblem(v("1.33.0"), apiServers), undefined);
  assert.match(skewProblem(v("1.36.4"), apiServers) ?? "", /newer than kube-apiserver 1\.35\.2/);
  assert.match(skewProblem(v("1.32.0"), apiServers) ?? "", /older than kube-apiserver 1\.36\.4/);
});
