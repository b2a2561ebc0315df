/**
 * RemoteScript's contract with the engine, without a machine: which changes are updates (run the script again in
 * place), which are replacements (only a renamed machine), and which touch the machine not at all. The target is a
 * closed port on 127.0.0.1, so any operation that reaches for the machine fails with "refused": one that must not
 * reach it resolves.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { remoteScriptProvider, type RemoteScriptInputs } from "../../modules/remote";
import { closedPort, offlineTarget } from "../harness/offline-target";

describe("RemoteScript", () => {
  let olds: RemoteScriptInputs;
  const work = mkdtempSync(join(tmpdir(), "nodeforge-remote-script-"));
  after(() => rmSync(work, { recursive: true, force: true }));
  before(async () => {
    // A usable key, so that an operation that does connect gets as far as the refused port.
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(work, "key")]);
    const privateKey = readFileSync(join(work, "key"), "utf8");
    const target = { ...offlineTarget(), host: "127.0.0.1", port: await closedPort(), retries: 0, privateKey };
    olds = { target, step: "install-containerd", script: "true", deleteScript: "", triggers: ["a".repeat(64)] };
  });
  const diff = (news: RemoteScriptInputs) => remoteScriptProvider.diff("cp-1:install-containerd", olds, news);

  it("no change: no diff", async () => {
    assert.deepEqual(await diff({ ...olds }), { changes: false, replaces: [], deleteBeforeReplace: false });
  });

  it("a changed script, trigger, address or port is an update, never a replacement", async () => {
    for (const news of [
      { ...olds, script: "true # v2" },
      { ...olds, triggers: ["b".repeat(64)] },
      { ...olds, target: { ...olds.target, host: "127.0.0.2" } },
      { ...olds, target: { ...olds.target, port: olds.target.port + 1 } },
      { ...olds, deleteScript: "rm -f /etc/x" },
      { ...olds, target: { ...olds.target, privateKey: "another key" } },
    ]) {
      assert.deepEqual(await diff(news), { changes: true, replaces: [], deleteBeforeReplace: false });
    }
  });

  it("a renamed machine is a replacement, the old step undone first", async () => {
    assert.deepEqual(await diff({ ...olds, target: { ...olds.target, machine: "cp-9" } }), {
      changes: true,
      replaces: ["target"],
      deleteBeforeReplace: true,
    });
  });

  it("an update of credentials or the delete script alone does not reach the machine", async () => {
    const news = { ...olds, deleteScript: "rm -f /etc/x", target: { ...olds.target, privateKey: "another key" } };
    assert.deepEqual(await remoteScriptProvider.update("id", olds, news), { outs: news });
  });

  it("an update of the script runs it (here: the machine refuses, so the update fails)", async () => {
    await assert.rejects(remoteScriptProvider.update("id", olds, { ...olds, script: "true # v2" }), {
      message: /^cp-1: install-containerd: connection to 127\.0\.0\.1:[0-9]+ refused/,
    });
  });

  it("a delete with no delete script does not reach the machine; with one it does", async () => {
    await remoteScriptProvider.delete("id", olds);
    await assert.rejects(remoteScriptProvider.delete("id", { ...olds, deleteScript: "rm -f /etc/x" }), {
      message: /refused/,
    });
  });
});
