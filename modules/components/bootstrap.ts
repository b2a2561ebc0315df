/**
 * Turns prepared nodes into a cluster: the planned cluster steps (modules/plan: kubeadm init, the bootstrap token,
 * joins, registrations, kube-proxy, CNI) as Pulumi resources on the machines they run on, each waiting with
 * dependsOn for what its plan says it comes after. Secrets (CA keys, bootstrap token) come from ClusterPki and
 * EtcdPki and stay Pulumi secrets: the files carrying them are written mode 0600 with secret content.
 */
import * as pulumi from "@pulumi/pulumi";
import type { EtcdCluster } from "../etcd";
import type { Pins } from "../pins";
import type { ClusterPki, EtcdPki } from "../pki";
import {
  fileContent,
  isSecretFile,
  planClusterSteps,
  type ClusterSecretName,
  type ClusterSecrets,
  type PlannedAfter,
  type PlannedClusterStep,
  type PlannedFile,
} from "../plan";
import type { StackSpec } from "../stack/types";
import { sha256 } from "../steps/hash";
import type { EtcdMember } from "./etcd-member";
import type { Node } from "./node";
import { filesTrigger, remoteStep, type StepFile } from "./remote-step";

/** The external etcd cluster (stack `etcd.external`): its PKI and its members' components. */
export interface ExternalEtcdMembers {
  cluster: EtcdCluster;
  pki: EtcdPki;
  members: EtcdMember[];
}

export interface BootstrapArgs {
  stack: StackSpec;
  nodes: Node[];
  pki: ClusterPki;
  /** Absent for stacked etcd (kubeadm runs etcd on the control planes). */
  etcd?: ExternalEtcdMembers;
  /** Version pins and checksums (the CNI manifest's); defaults to nodeforge's own. */
  pins?: Pins;
}

/** Each secret a planned file may name, as the Output of the resource that makes it. */
function secretOutputs(
  pki: ClusterPki,
  etcd: ExternalEtcdMembers | undefined,
): Record<ClusterSecretName, pulumi.Output<string>> {
  // Without an external etcd cluster no planned file names its secrets.
  const none = pulumi.output("");
  return {
    caCert: pki.caCert,
    caKey: pki.caKey,
    frontProxyCaCert: pki.frontProxyCaCert,
    frontProxyCaKey: pki.frontProxyCaKey,
    etcdCaCert: pki.etcdCaCert,
    etcdCaKey: pki.etcdCaKey,
    serviceAccountKey: pki.serviceAccountKey,
    serviceAccountPub: pki.serviceAccountPub,
    bootstrapToken: pki.bootstrapToken,
    caCertHash: pki.caCertHash,
    externalEtcdCaCert: etcd?.pki.caCert ?? none,
    externalEtcdClientCert: etcd?.pki.clientCert ?? none,
    externalEtcdClientKey: etcd?.pki.clientKey ?? none,
  };
}

/** A planned file with its content filled in from the secrets' Outputs (secret where the plan says so). */
function stepFile(file: PlannedFile, outputs: Record<ClusterSecretName, pulumi.Output<string>>): StepFile {
  const { content } = file;
  const secret = isSecretFile(file);
  const value =
    "text" in content
      ? pulumi.output(content.text)
      : "secretName" in content
        ? outputs[content.secretName]
        : pulumi.all(outputs).apply((all) => fileContent(file, all as unknown as ClusterSecrets));
  return {
    path: file.path,
    mode: file.mode,
    owner: file.owner,
    group: file.group,
    content: secret ? pulumi.secret(value) : value,
    ...(secret ? { secret: true } : {}),
  };
}

/** What re-runs the step's script: its files' hash (with the plan's salt), or the hash of the plan's text. */
function trigger(step: PlannedClusterStep, files: StepFile[]): pulumi.Input<string> {
  if ("text" in step.trigger) return sha256(step.trigger.text);
  const { salt } = step.trigger;
  const hash = filesTrigger(files);
  return salt === undefined ? hash : hash.apply((h) => sha256(`${h}\0${salt}`));
}

/** Creates the planned cluster steps, each under the Node it runs on; returns the last one. */
export function bootstrapCluster(args: BootstrapArgs): pulumi.Resource {
  const { stack, pki, etcd } = args;
  const nodeOf = new Map(args.nodes.map((n) => [n.machineName, n]));
  const node = (machine: string): Node =>
    nodeOf.get(machine) ??
    (() => {
      throw new Error(`${stack.file}: no node for machine ${machine}`);
    })();
  const memberOf = new Map(etcd?.members.map((m) => [m.machineName, m]));
  const outputs = secretOutputs(pki, etcd);
  const done = new Map<string, pulumi.Resource>();
  const resolve = (after: PlannedAfter): pulumi.Resource => {
    if ("node" in after) return node(after.node).ready;
    if ("etcdMember" in after) {
      const member = memberOf.get(after.etcdMember);
      if (!member) throw new Error(`${stack.file}: no etcd member ${after.etcdMember}`);
      return member.ready;
    }
    const step = done.get(after.step);
    if (!step) throw new Error(`${stack.file}: cluster step ${after.step} is planned after the step that waits for it`);
    return step;
  };

  let last: pulumi.Resource | undefined;
  for (const step of planClusterSteps(stack, args.pins, etcd?.cluster)) {
    const on = node(step.machine);
    const files = step.files.map((f) => stepFile(f, outputs));
    last = remoteStep(on, {
      machine: step.machine,
      step: step.step,
      name: step.id,
      access: on.access,
      files,
      script: step.script,
      deleteScript: step.deleteScript,
      triggers: [trigger(step, files)],
      dependsOn: step.after.map(resolve),
    });
    done.set(step.id, last);
  }
  return (
    last ??
    (() => {
      throw new Error(`${stack.file}: no cluster step planned`);
    })()
  );
}
