/**
 * AdminCertificate's provider: the admin kubeconfig's client certificate kept across runs, reissued by a new
 * certificates.renewal value or a new CA, always signed by the cluster CA.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { describe, it } from "node:test";
import { adminCertificateProvider, generateClusterPki } from "../../modules/pki";

describe("the admin kubeconfig's certificate", () => {
  const pki = generateClusterPki({ clusterName: "lab" });
  const inputs = { caCert: pki.caCert, caKey: pki.caKey, renewal: "" };

  it("is kept while the CA and the renewal value stay; a new renewal value reissues it, signed by the CA", async () => {
    const { outs: first } = await adminCertificateProvider.create(inputs);
    const ca = new X509Certificate(pki.caCert);
    assert.ok(new X509Certificate(first.cert).verify(ca.publicKey), "signed by the cluster CA");
    assert.match(new X509Certificate(first.cert).subject, /CN=kubernetes-admin/);
    assert.deepEqual(await adminCertificateProvider.diff("id", first, inputs), { changes: false, replaces: [] });
    const kept = await adminCertificateProvider.update("id", first, inputs);
    assert.equal(kept.outs.cert, first.cert);

    const renewing = { ...inputs, renewal: "2026-12" };
    assert.equal((await adminCertificateProvider.diff("id", first, renewing)).changes, true);
    const { outs: renewed } = await adminCertificateProvider.update("id", first, renewing);
    assert.notEqual(renewed.cert, first.cert);
    assert.notEqual(renewed.key, first.key);
    assert.ok(new X509Certificate(renewed.cert).verify(ca.publicKey));
  });

  it("a new CA reissues it under that CA", async () => {
    const { outs: first } = await adminCertificateProvider.create(inputs);
    const other = generateClusterPki({ clusterName: "lab" });
    const moved = { caCert: other.caCert, caKey: other.caKey, renewal: "" };
    const { outs } = await adminCertificateProvider.update("id", first, moved);
    assert.ok(new X509Certificate(outs.cert).verify(new X509Certificate(other.caCert).publicKey));
  });
});
