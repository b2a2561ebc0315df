/** Policy: every machine step verifies the machine's pinned SSH host key, and its bastion's. */
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { machineStep } from "./machine-steps";

function blank(hostKey: unknown): boolean {
  return typeof hostKey !== "string" || hostKey.trim() === "";
}

export const hostKeysPinned: ResourceValidationPolicy = {
  name: "host-keys-pinned",
  description:
    "Every machine step's SSH connection (and its bastion's) names the machine's pinned host key. Without one, " +
    "whatever answers at the address (a spoofed or re-assigned machine) gets the login, the step's secret files " +
    "and the sudo password, and runs the step's script as root.",
  validateResource: (args, reportViolation) => {
    const step = machineStep(args.type, args.name, args.props);
    // An unknown target (a VM's host key comes from the VM's own resource) is checked when `pulumi up` knows it.
    const target = step?.target;
    if (!step || !target) return;
    if (blank(target.hostKey)) {
      reportViolation(`${step.machine}: ${step.step}: no pinned host key (target.hostKey is empty or absent)`);
    }
    if (target.bastion && blank(target.bastion.hostKey)) {
      reportViolation(`${step.machine}: ${step.step}: the bastion has no pinned host key (target.bastion.hostKey)`);
    }
  },
};
