/**
 * The SSH layer's pure parts: the privileged command lines every resource runs (shape, shellcheck, no secret
 * on them), which connection failures are retried, the backoff, and UnitState's check and diff.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { privilegedCommandLine, sudoPasswordLine } from "../../modules/remote/command-line";
import { describeConnectError, SshConnectError, type Hop } from "../../modules/remote/dial";
import { backoffMs } from "../../modules/remote/session";
import { unitStateProvider, type UnitStateInputs, type UnitStateOutputs } from "../../modules/remote/unit-state";
import { offlineTarget } from "../harness/offline-target";

const SCRIPT = "set -eu\necho 'hello world' > /etc/motd";

/** The argument of the outer `/bin/sh -c '...'`, unquoted by a real shell. */
function innerOf(line: string): string {
  const result = spawnSync("/bin/sh", ["-c", `set -- ${line.replace(/^\/bin\/sh -c /, "")}; printf '%s' "$1"`], {
    encoding: "utf8",
  });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

describe("privileged command lines", () => {
  it("run the script as one quoted /bin/sh -c argument, with sudo -n when passwordless", () => {
    assert.equal(
      privilegedCommandLine(SCRIPT, "direct"),
      `/bin/sh -c 'set -eu\necho '\\''hello world'\\'' > /etc/motd'`,
    );
    assert.equal(privilegedCommandLine(SCRIPT, "sudo"), `sudo -n -- ${privilegedCommandLine(SCRIPT, "direct")}`);
  });

  it("with a password: a POSIX sh wrapper that reads it from stdin and hands it to sudo on a pipe", () => {
    const wrapper = innerOf(privilegedCommandLine(SCRIPT, "sudo-password"));
    assert.equal(
      wrapper,
      [
        "nf_password=",
        `IFS= read -r nf_password || [ -n "$nf_password" ] || { echo 'nodeforge: no sudo password on stdin' >&2; exit 125; }`,
        "if sudo -n -- /bin/sh -c : </dev/null 2>/dev/null; then",
        "  nf_password=",
        `  exec sudo -n -- /bin/sh -c 'set -eu\necho '\\''hello world'\\'' > /etc/motd'`,
        "fi",
        `printf '%s\\n' "$nf_password" | sudo -k -S -p '' -- /bin/sh -c 'exec 0<"/proc/$1/fd/0" || exit 125\nset --\n` +
          `set -eu\necho '\\''hello world'\\'' > /etc/motd' nodeforge "$$"`,
      ].join("\n"),
    );
  });

  it(
    "passes shellcheck (POSIX sh), outer line and wrapper alike",
    { skip: !hasShellcheck() && "no shellcheck" },
    () => {
      const line = privilegedCommandLine(SCRIPT, "sudo-password");
      // The outer line nests quotes (SC1003 is an info-level note about that): warnings and errors only there.
      for (const [text, severity] of [
        [line, "warning"],
        [innerOf(line), "style"],
      ] as const) {
        const result = spawnSync("shellcheck", ["-s", "sh", "-S", severity, "-"], {
          input: `#!/bin/sh\n${text}\n`,
          encoding: "utf8",
        });
        assert.equal(result.status, 0, result.stdout);
      }
    },
  );

  it("never carry the password: it is the first line of stdin, and must be one line", () => {
    assert.equal(sudoPasswordLine("s3cret pass"), "s3cret pass\n");
    assert.throws(() => sudoPasswordLine("two\nlines"), { message: "the sudo password must be a single line" });
    assert.throws(() => sudoPasswordLine("cr\r"), { message: "the sudo password must be a single line" });
  });
});

function hasShellcheck(): boolean {
  return spawnSync("shellcheck", ["--version"]).status === 0;
}

describe("connection failures", () => {
  const hop: Hop = {
    machine: "cp-1",
    label: "10.0.0.5:22",
    user: "ops",
    hostKey: "",
    privateKey: "",
    timeoutSeconds: 15,
  };
  const failure = (message: string, extra: Record<string, string> = {}): Error =>
    Object.assign(new Error(message), extra);
  const cases: [string, Error, string, boolean][] = [
    [
      "refused",
      failure("connect ECONNREFUSED 10.0.0.5:22", { code: "ECONNREFUSED" }),
      "cp-1: connection to 10.0.0.5:22 refused (is sshd listening there?)",
      true,
    ],
    [
      "reset",
      failure("read ECONNRESET", { code: "ECONNRESET" }),
      "cp-1: ssh connection to 10.0.0.5:22 failed: read ECONNRESET",
      true,
    ],
    [
      "handshake timeout",
      failure("Timed out while waiting for handshake", { level: "client-timeout" }),
      "cp-1: connection to 10.0.0.5:22 timed out after 15s",
      true,
    ],
    [
      "lost before the handshake",
      failure("Connection lost before handshake"),
      "cp-1: ssh connection to 10.0.0.5:22 failed: Connection lost before handshake",
      true,
    ],
    [
      "unreachable",
      failure("connect EHOSTUNREACH 10.0.0.5:22", { code: "EHOSTUNREACH" }),
      "cp-1: 10.0.0.5:22 is unreachable (EHOSTUNREACH)",
      true,
    ],
    [
      "authentication",
      failure("All configured authentication methods failed", { level: "client-authentication" }),
      "cp-1: authentication as ops at 10.0.0.5:22 failed: the private key was not accepted",
      false,
    ],
    [
      "no host key of a usable type",
      failure("Handshake failed: no matching host key format", { level: "handshake" }),
      "cp-1: 10.0.0.5:22 offers no host key nodeforge can use: Handshake failed: no matching host key format",
      false,
    ],
    [
      "an unusable private key",
      failure("Cannot parse privateKey: Unsupported key format"),
      "cp-1: the private key for 10.0.0.5:22 cannot be used: Cannot parse privateKey: Unsupported key format",
      false,
    ],
    [
      "a name that does not resolve",
      failure("getaddrinfo ENOTFOUND cp-1.invalid", { code: "ENOTFOUND" }),
      "cp-1: 10.0.0.5:22: the name does not resolve (ENOTFOUND)",
      false,
    ],
  ];
  for (const [label, error, message, transient] of cases) {
    it(`${label}: ${transient ? "retried" : "not retried"}`, () => {
      const described = describeConnectError(hop, error);
      assert.ok(described instanceof SshConnectError);
      assert.equal(described.message, message);
      assert.equal(described.transient, transient);
    });
  }

  it("back off 0.5 s, 1 s, 2 s, 4 s, then 8 s at most", () => {
    assert.deepEqual([1, 2, 3, 4, 5, 10].map(backoffMs), [500, 1000, 2000, 4000, 8000, 8000]);
  });
});

describe("UnitState check and diff", () => {
  const target = offlineTarget({ connectTimeoutSeconds: 15, retries: 3 });
  const inputs: UnitStateInputs = {
    target,
    step: "install-containerd",
    unit: "containerd.service",
    enabled: true,
    active: true,
  };
  const recorded: UnitStateOutputs = { ...inputs, isEnabled: "enabled", isActive: "active" };
  const same = { changes: false, replaces: [], deleteBeforeReplace: false };
  const update = { changes: true, replaces: [], deleteBeforeReplace: false };
  const cases: [string, UnitStateOutputs, UnitStateInputs, object][] = [
    ["as recorded", recorded, inputs, same],
    ["refreshed as disabled", { ...recorded, enabled: false, isEnabled: "disabled" }, inputs, update],
    ["refreshed as stopped", { ...recorded, active: false, isActive: "inactive" }, inputs, update],
    ["refreshed as masked", { ...recorded, enabled: false, isEnabled: "masked" }, inputs, update],
    ["retries changed (how we get in)", recorded, { ...inputs, target: { ...target, retries: 5 } }, update],
    [
      "another machine",
      recorded,
      { ...inputs, target: { ...target, host: "10.0.0.6" } },
      { ...update, replaces: ["target"] },
    ],
    ["another unit", recorded, { ...inputs, unit: "kubelet.service" }, { ...update, replaces: ["unit"] }],
  ];
  for (const [label, olds, news, expected] of cases) {
    it(`diff: ${label}`, async () => {
      assert.deepEqual(await unitStateProvider.diff("cp-1:containerd.service", olds, news), expected);
    });
  }

  it("diff: a stopped unit whose running state is not managed is no drift", async () => {
    const enabledOnly: UnitStateInputs = { target, step: "configure-kubelet", unit: "kubelet.service", enabled: true };
    const olds: UnitStateOutputs = { ...enabledOnly, isEnabled: "enabled" };
    assert.deepEqual(await unitStateProvider.diff("id", olds, enabledOnly), same);
  });

  it("check: unit names and pinned host keys", async () => {
    assert.equal((await unitStateProvider.check(inputs, inputs)).failures, undefined);
    const bad = await unitStateProvider.check(inputs, {
      ...inputs,
      unit: "kubelet.service; reboot",
      target: { ...target, bastion: { host: "b", port: 22, user: "j", privateKey: "k", hostKey: "ssh-rsa AAAA" } },
    });
    assert.deepEqual(bad.failures, [
      {
        property: "target",
        reason: "bastion.hostKey: host key data for ssh-rsa is not an SSH public key: truncated field length",
      },
      { property: "unit", reason: '"kubelet.service; reboot" is not a systemd unit name' },
    ]);
  });
});
