/**
 * The Pulumi program: read the stack file named in config, validate it, and build the cluster.
 * `pulumi config set nodeforge:stackFile stacks/lab.yaml` chooses the file; the SSH private key (and a
 * sudo password, if any) are config secrets named in the stack file.
 */
import * as pulumi from "@pulumi/pulumi";
import { Cluster } from "./modules/components";
import { loadStackFile, StackValidationError, type StackSpec } from "./modules/stack";

const config = new pulumi.Config("nodeforge");

/** The validated stack file; a bad one stops the program with `nodeforge validate`'s lines and no stack trace. */
function readStackFile(file: string): StackSpec {
  try {
    return loadStackFile(file);
  } catch (error) {
    if (error instanceof StackValidationError) throw new pulumi.RunError(error.message);
    throw error;
  }
}

const stack = readStackFile(config.require("stackFile"));

const cluster = new Cluster(stack.cluster.name, {
  stack,
  secret: (key) => config.requireSecret(key),
});

/** The nodes this stack manages: name, role and SSH address. */
export const nodes = cluster.nodeSummaries;
/** The Kubernetes version installed on every node. */
export const kubernetesVersion = stack.cluster.kubernetesVersion;
/** The API server URL. */
export const apiEndpoint = cluster.apiEndpoint;
/** The cluster admin's kubeconfig (a secret): `pulumi stack output --show-secrets kubeconfig > admin.conf`. */
export const kubeconfig = cluster.adminKubeconfig;
/** When the cluster's CAs and the admin kubeconfig's certificate expire (ISO 8601, UTC): renew with certificates.renewal. */
export const certificateExpiry = cluster.certificateExpiry;
