/** Stack policy: an odd number of control planes when each runs a stacked etcd member. */
import type { StackValidationPolicy } from "@pulumi/policy";
import { machinesWriting, STACKED_ETCD_CA_KEY } from "./control-planes";
import { machineSteps } from "./machine-steps";

export const oddControlPlaneCount: StackValidationPolicy = {
  name: "odd-control-plane-count",
  description:
    "With stacked etcd (an etcd member on each control plane) the number of control-plane machines is odd: 1, 3 " +
    "or 5. etcd commits a write only when a majority (quorum) of its members agrees: 4 members survive the loss " +
    "of one, as 3 do, with one more machine that can fail, and a network split into two halves leaves neither a " +
    "quorum (the API stops on both sides).",
  validateStack: (args, reportViolation) => {
    const members = machinesWriting(machineSteps(args.resources), STACKED_ETCD_CA_KEY);
    if (members.length % 2 === 0 && members.length > 0) {
      reportViolation(
        `${members.length} control-plane machines run stacked etcd (${members.join(", ")}): ` +
          "an odd number (1, 3, 5) keeps a quorum when one fails",
      );
    }
  },
};
