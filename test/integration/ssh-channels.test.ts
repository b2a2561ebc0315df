/**
 * sshd refusing a channel on a live connection (its MaxSessions reached: it counts channels it has not finished
 * closing, which a step's many short file reads in a row can run into) is waited out: the command had not started,
 * so it is tried again after a pause, on the same connection. Against a real sshd with `MaxSessions 1` and one
 * command holding the only channel for a while.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { closeAllSessions, runRemote, sessionStats } from "../../modules/remote/session";
import { useSshd } from "../harness/sshd";

after(closeAllSessions);
const server = useSshd({ extraConfig: ["MaxSessions 1"] });

test("a channel sshd refuses while its one session is busy runs once that one is done, on the same connection", async () => {
  const target = server().target({ machine: "busy" });
  const connects = sessionStats().connects;
  const holding = runRemote(target, "sleep 0.5; echo first");
  // Let the first command open the only channel sshd allows.
  await new Promise((resolve) => setTimeout(resolve, 150));
  const started = Date.now();
  const second = await runRemote(target, "echo second");
  assert.deepEqual(second, { code: 0, stdout: "second\n", stderr: "" });
  assert.ok(Date.now() - started >= 200, "it waited for the busy channel");
  assert.deepEqual(await holding, { code: 0, stdout: "first\n", stderr: "" });
  assert.equal(sessionStats().connects - connects, 1, "one connection for both");
});
