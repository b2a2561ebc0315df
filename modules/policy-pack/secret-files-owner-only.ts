/**
 * Policy: a file that holds a secret is readable by its owner only. A step's file is secret when the program made it
 * of Pulumi secrets: MachineStep then carries its content in `secretContents` (a Pulumi secret) and only its sha256
 * in `files`. Policies receive secrets unwrapped, with no mark left on them, so that layout is how a policy tells a
 * secret file; a file given as plain text that holds a private key is as secret, whatever the program said.
 */
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { machineStep, type StepFile } from "./machine-steps";

const PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;

/** Bits of a mode that give the file's group or everyone else any access (read, write or execute). */
const GROUP_OR_OTHERS = 0o077;

function isSecret(file: StepFile): boolean {
  return file.content === undefined || PRIVATE_KEY.test(file.content);
}

export const secretFilesOwnerOnly: ResourceValidationPolicy = {
  name: "secret-files-owner-only",
  description:
    "A file a machine step writes from a Pulumi secret (or that holds a private key) has a mode that gives its " +
    "group and other users nothing (0600 or 0400), so no account on the machine but the owner reads a CA key, " +
    "token or password. Group access is refused too: no reader of nodeforge's secret files gets at them through a " +
    "group (kubeadm and the kubelet run as root, etcd reads its own keys as their owner), so a group bit only " +
    "widens who can read (or replace) them.",
  validateResource: (args, reportViolation) => {
    const step = machineStep(args.type, args.name, args.props);
    if (!step) return;
    for (const path of step.paths) {
      // A file made of values a preview does not know yet (a new PKI's keys) is checked by `pulumi up`.
      const file = step.file(path);
      if (!file || !isSecret(file)) continue;
      const mode = Number.parseInt(file.mode ?? "", 8);
      if (Number.isNaN(mode) || (mode & GROUP_OR_OTHERS) !== 0) {
        reportViolation(
          `${step.machine}: ${step.step}: ${path} holds a secret and its mode ${JSON.stringify(file.mode)} ` +
            "gives its group or other users access: make it 0600 (or 0400)",
        );
      }
    }
  },
};
