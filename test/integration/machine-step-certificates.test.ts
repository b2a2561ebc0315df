/**
 * A MachineStep that names certificates against a real sshd on 127.0.0.1 (the "machine" is this host): its script
 * makes a certificate as kubeadm would; create, update and refresh read when it expires; a certificate renewed
 * behind the step's back shows at the next refresh; a step that names none reads nothing; check refuses a path
 * that is not absolute.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { machineStepProvider, type MachineStepInputs } from "../../modules/remote/machine-step";
import { shellQuote } from "../../modules/render/shell";
import { closeAllSessions } from "../../modules/remote/session";
import { useSshd } from "../harness/sshd";

// Pooled connections must be closed before sshd stops (hooks run in registration order).
after(closeAllSessions);
const server = useSshd();
const work = mkdtempSync(join(tmpdir(), "nodeforge-step-certificates-"));
after(() => rmSync(work, { recursive: true, force: true }));

/** A script that makes a self-signed certificate valid `days` days at `path`, as kubeadm makes its own. */
function makeCertificate(path: string, days: number): string {
  const q = shellQuote;
  return (
    `openssl req -x509 -newkey ed25519 -nodes -subj /CN=apiserver -days ${days} ` +
    `-keyout ${q(`${path}.key`)} -out ${q(path)} 2>/dev/null`
  );
}

const expiryOn = (path: string) => new Date(new X509Certificate(readFileSync(path)).validTo).toISOString();

describe("MachineStep certificates", () => {
  const cert = join(work, "apiserver.crt");
  const absent = join(work, "etcd-server.crt");
  let inputs: MachineStepInputs;
  before(() => {
    inputs = {
      target: server().target(),
      step: { name: "kubeadm-init", script: makeCertificate(cert, 365), deleteScript: "", triggers: [] },
      files: {},
      certificates: [cert, absent],
    };
  });

  test("create runs the script, then reads when what it made expires (a path that is no file left out)", async () => {
    const { outs } = await machineStepProvider.create(inputs);
    assert.deepEqual(outs.certificateExpiry, { [cert]: expiryOn(cert) });
    const days = (Date.parse(outs.certificateExpiry![cert]!) - Date.now()) / 86_400_000;
    assert.ok(days > 364 && days <= 365, `${days} days`);
  });

  test("refresh reads a certificate renewed behind the step's back; the next update keeps reading it", async () => {
    const { outs } = await machineStepProvider.create(inputs);
    execFileSync("sh", ["-c", makeCertificate(cert, 30)]);
    const { props } = await machineStepProvider.read("machine:kubeadm-init", outs);
    assert.deepEqual(props.certificateExpiry, { [cert]: expiryOn(cert) });
    assert.ok(Date.parse(props.certificateExpiry![cert]!) < Date.parse(outs.certificateExpiry![cert]!));
    // The readings are outputs only: a preview sees no change from them.
    const diff = await machineStepProvider.diff("machine:kubeadm-init", props, inputs);
    assert.equal(diff.changes, false);
    // A step that renews (another script) reads what its run made.
    const renew = { ...inputs, step: { ...inputs.step, script: makeCertificate(cert, 200) } };
    const updated = await machineStepProvider.update("machine:kubeadm-init", props, renew);
    assert.deepEqual(updated.outs.certificateExpiry, { [cert]: expiryOn(cert) });
  });

  test("a new list of certificates is a change; a step that names none reads nothing", async () => {
    const { outs } = await machineStepProvider.create(inputs);
    const fewer = { ...inputs, certificates: [cert] };
    assert.equal((await machineStepProvider.diff("machine:kubeadm-init", outs, fewer)).changes, true);
    const created = await machineStepProvider.create({ ...inputs, certificates: undefined });
    assert.equal(created.outs.certificateExpiry, undefined);
  });

  test("check refuses certificates that are not a list of absolute paths, naming each bad one", async () => {
    assert.equal((await machineStepProvider.check(inputs, inputs)).failures, undefined);
    const relative = await machineStepProvider.check(inputs, { ...inputs, certificates: [cert, "pki/apiserver.crt"] });
    assert.deepEqual(relative.failures, [
      { property: "certificates", reason: '"pki/apiserver.crt" is not an absolute path' },
    ]);
    const notList = await machineStepProvider.check(inputs, { ...inputs, certificates: cert as never });
    assert.deepEqual(notList.failures, [{ property: "certificates", reason: "is not a list of paths" }]);
  });
});
