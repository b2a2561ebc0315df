/** What nodeforge will do, as plain data (no Pulumi, no SSH): the cluster's steps after the nodes are prepared. */
export * from "./cluster-steps";
