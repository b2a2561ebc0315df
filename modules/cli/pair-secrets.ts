/**
 * One set of throwaway secrets for two stacks, for `nodeforge diff`: both plans are rendered with the same CAs,
 * token and keys, so a file made of them differs only where its other lines do.
 */
import { generateClusterSecrets, type ClusterSecrets } from "../plan";
import type { StackSpec } from "../stack";

/** `next`'s items, then `previous`'s that `next` has none of by name. */
function union<T extends { name: string }>(next: readonly T[], previous: readonly T[]): T[] {
  return [...next, ...previous.filter((p) => !next.some((n) => n.name === p.name))];
}

/**
 * A stack with every machine of either side, so that the secrets cover both: the host keys of every VM and the
 * certificates of every external etcd member (the cluster's name and etcd's kind are the same on both sides:
 * checkTransition refuses a change of either).
 */
export function unionStack(previous: StackSpec, next: StackSpec): StackSpec {
  const etcd =
    next.etcd && previous.etcd
      ? { external: { machines: union(next.etcd.external.machines, previous.etcd.external.machines) } }
      : (next.etcd ?? previous.etcd);
  return { ...next, machines: union(next.machines, previous.machines), ...(etcd ? { etcd } : {}) };
}

/** Throwaway secrets that render both stacks' plans. */
export function pairSecrets(previous: StackSpec, next: StackSpec): ClusterSecrets {
  return generateClusterSecrets(unionStack(previous, next));
}
