/**
 * A planned step: one unit of work on one machine as plain data (no Pulumi, no SSH). Node steps, external etcd
 * members and the cluster's bootstrap steps all take this one shape; modules/components turns each into one
 * resource, `nodeforge render` writes them out.
 */
import type { ClusterPkiInputs, ClusterPkiOutputs, EtcdPkiMaterial } from "../pki";
import type { StepUnit } from "../steps";
import type { VmSecrets } from "../vm";

export type { VmSecrets };

/**
 * The secrets a cluster's files are made of: ClusterPki's (the ones files carry; the admin client certificate
 * goes into the stack's kubeconfig output only), EtcdPki's CA and client certificate and key for an external etcd
 * cluster, and its members' certificates and keys (empty for stacked etcd).
 */
export type ClusterSecrets = Omit<ClusterPkiOutputs, keyof ClusterPkiInputs | "adminCert" | "adminKey"> & {
  externalEtcdCaCert: string;
  externalEtcdClientCert: string;
  externalEtcdClientKey: string;
  externalEtcdMembers: Pick<EtcdPkiMaterial, "memberCerts" | "memberKeys">;
  /** What each VM's cloud-init seed is made of, by VM name (empty without VMs). */
  vms: Record<string, VmSecrets>;
};

/** The external etcd cluster's part of the secrets. */
export type ExternalEtcdSecrets = Pick<
  ClusterSecrets,
  "externalEtcdCaCert" | "externalEtcdClientCert" | "externalEtcdClientKey" | "externalEtcdMembers"
>;

/** The external etcd cluster's secrets from its PKI; empty for stacked etcd, where no planned file names them. */
export function externalEtcdSecrets(pki: EtcdPkiMaterial | undefined): ExternalEtcdSecrets {
  return {
    externalEtcdCaCert: pki?.caCert ?? "",
    externalEtcdClientCert: pki?.clientCert ?? "",
    externalEtcdClientKey: pki?.clientKey ?? "",
    externalEtcdMembers: { memberCerts: pki?.memberCerts ?? {}, memberKeys: pki?.memberKeys ?? {} },
  };
}

/** The secrets a file may hold verbatim (each one PEM or token). */
export type ClusterSecretName = Exclude<keyof ClusterSecrets, "externalEtcdMembers" | "vms">;

/** Which of them are secret (the others are certificates and hashes, public by nature). */
export const SECRET_NAMES: ReadonlySet<ClusterSecretName> = new Set<ClusterSecretName>([
  "caKey",
  "frontProxyCaKey",
  "etcdCaKey",
  "serviceAccountKey",
  "bootstrapToken",
  "externalEtcdClientKey",
]);

/**
 * Where a planned file's content comes from: written as is (`text`), one of the cluster's secrets verbatim
 * (`secretName`), or rendered from all of them (`fromSecrets`: secret as a whole unless `public`, for files that
 * hold only certificates).
 */
export type PlannedContent =
  | { text: string }
  | { secretName: ClusterSecretName }
  | { fromSecrets: (secrets: ClusterSecrets) => string; public?: true };

export interface PlannedFile {
  path: string;
  mode: string;
  owner: string;
  group: string;
  content: PlannedContent;
}

/**
 * A script: its text, or rendered from the secrets when it names what they hash to (a restart stamp). Such a script
 * still carries no secret: state and `pulumi preview --diff` show it.
 */
export type PlannedScript = string | { fromSecrets: (secrets: ClusterSecrets) => string };

export interface PlannedStep {
  /** Unique in the plan; the step's resource name (`cp-1-install-containerd`, `cp-1-kubeadm-init`). */
  id: string;
  /** The step's name, in messages and the machine's journal: `cp-1: kubeadm-init: ...`. */
  step: string;
  /** The machine the step runs on. */
  machine: string;
  title: string;
  files: PlannedFile[];
  script: PlannedScript;
  /** Run when the step goes away (destroy, or its machine dropped from the stack); "" for nothing to undo. */
  deleteScript: string;
  /** Units the script enables, watched for drift. */
  units: readonly StepUnit[];
  /** Values whose change runs the script again besides its files and its text (never secrets). */
  triggers: string[];
  /** The ids of the steps this one runs after. */
  after: string[];
  /**
   * Certificates the script makes or renews on the machine (PEM files, kubeconfigs' client certificates), whose
   * expiry the step reads after it runs and on refresh; absent for none.
   */
  certificates?: string[];
}

/** Whether a planned file's content is secret (mode 0600, a Pulumi secret). */
export function isSecretFile(file: PlannedFile): boolean {
  const { content } = file;
  if ("fromSecrets" in content) return !content.public;
  return "secretName" in content && SECRET_NAMES.has(content.secretName);
}

/** Whether the step needs the cluster's secrets at all (a file or the script made of them). */
export function usesSecrets(step: PlannedStep): boolean {
  return typeof step.script !== "string" || step.files.some((f) => !("text" in f.content));
}

/** The file's content for these secrets. */
export function fileContent(file: PlannedFile, secrets: ClusterSecrets): string {
  const { content } = file;
  if ("text" in content) return content.text;
  if ("secretName" in content) return secrets[content.secretName];
  return content.fromSecrets(secrets);
}

/** The script's text for these secrets. */
export function scriptText(script: PlannedScript, secrets: ClusterSecrets): string {
  return typeof script === "string" ? script : script.fromSecrets(secrets);
}
