/**
 * How a step reads its certificates' expiry on a machine: the script run by this host's dash against real files
 * (certificates made by openssl, a kubeconfig with a client certificate and key), its answer parsed; the script
 * passes shellcheck; only certificates come back, never the kubeconfig's key.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { kubeadmCertificates } from "../../modules/cluster-config";
import { certificateReadScript, parseCertificateExpiry } from "../../modules/remote/certificate-expiry";

const work = mkdtempSync(join(tmpdir(), "nodeforge-certificate-expiry-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** A self-signed certificate valid `days` days, and its key, made by openssl. */
function certificate(name: string, days: number): { cert: string; key: string } {
  const [certFile, keyFile] = [join(work, `${name}.pem`), join(work, `${name}.key`)];
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ed25519", "-nodes", "-subj", `/CN=${name}`, "-days", String(days),
    "-keyout", keyFile, "-out", certFile,
  ], { stdio: "ignore" }); // prettier-ignore
  return { cert: readFileSync(certFile, "utf8"), key: readFileSync(keyFile, "utf8") };
}

const expiryOf = (pem: string) => new Date(new X509Certificate(pem).validTo).toISOString();
const runScript = (paths: string[]) => execFileSync("dash", ["-c", certificateReadScript(paths)], { encoding: "utf8" });

describe("reading certificates' expiry on a machine", () => {
  let server: { cert: string; key: string };
  let client: { cert: string; key: string };
  const dir = join(work, "etc kubernetes's"); // a path a shell must be given quoted
  const paths = {
    pem: join(dir, "apiserver.crt"),
    kubeconfig: join(dir, "admin.conf"),
    absent: join(dir, "super-admin.conf"),
    garbage: join(dir, "broken.crt"),
  };
  before(() => {
    server = certificate("server", 365);
    client = certificate("client", 30);
    mkdirSync(dir);
    writeFileSync(paths.pem, server.cert);
    const data = (text: string) => Buffer.from(text).toString("base64");
    writeFileSync(
      paths.kubeconfig,
      [
        "apiVersion: v1",
        "kind: Config",
        "users:",
        "- name: kubernetes-admin",
        "  user:",
        `    client-certificate-data: ${data(client.cert)}`,
        `    client-key-data: ${data(client.key)}`,
        "",
      ].join("\n"),
    );
    writeFileSync(paths.garbage, "not a certificate\n");
  });

  it("gives each file's expiry by path: a PEM file's, a kubeconfig's client certificate's; absent and broken left out", () => {
    const answer = runScript(Object.values(paths));
    assert.deepEqual(parseCertificateExpiry(answer), {
      [paths.pem]: expiryOf(server.cert),
      [paths.kubeconfig]: expiryOf(client.cert),
    });
    assert.ok(Date.parse(expiryOf(client.cert)) < Date.parse(expiryOf(server.cert)), "the two are told apart");
  });

  it("sends no private key over the connection: the kubeconfig's key stays on the machine", () => {
    const answer = runScript([paths.kubeconfig, paths.pem]);
    const keyData = Buffer.from(client.key).toString("base64");
    assert.ok(!answer.includes(keyData) && !answer.includes("PRIVATE KEY"), answer);
  });

  it("sends no key from a malformed file: a certificate cut off before its END line, a key on the data's line", () => {
    const cutOff = join(dir, "cut-off.crt");
    const cutOffThenWhole = join(dir, "cut-off-then-whole.crt");
    const inline = join(dir, "inline.conf");
    const [begin, firstLine] = server.cert.split("\n");
    // A block whose END line comes only after a key: the key's BEGIN line ends the block, so nothing is printed.
    writeFileSync(cutOff, `${begin}\n${firstLine}\n${client.key}-----END CERTIFICATE-----\n`);
    writeFileSync(cutOffThenWhole, `${begin}\n${firstLine}\n${client.key}${server.cert}`);
    const keyData = Buffer.from(client.key).toString("base64");
    writeFileSync(inline, `users:\n- user:\n    client-certificate-data: QUJD, client-key-data: ${keyData}\n`);
    const answer = runScript([cutOff, cutOffThenWhole, inline]);
    assert.ok(!answer.includes(keyData) && !answer.includes("PRIVATE KEY"), answer);
    assert.ok(answer.includes("QUJD"), `the data's own base64 is read: ${answer}`);
    // The whole block after the cut-off one is still read; the others hold no certificate.
    assert.deepEqual(parseCertificateExpiry(answer), { [cutOffThenWhole]: expiryOf(server.cert) });
  });

  it("answers nothing where no path is a file", () => {
    assert.equal(runScript([paths.absent, dir]), "");
  });

  it("passes shellcheck", () => {
    const script = certificateReadScript(kubeadmCertificates(true).map((c) => c.path));
    execFileSync("shellcheck", ["-s", "sh", "-"], { input: `#!/bin/sh\n${script}\n` });
  });
});
