import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { etcdClusterOf } from "../etcd";
import { DEFAULT_PINS } from "../pins";
import { generateClusterPki, generateEtcdPki } from "../pki";
import { fileContent, isSecretFile, planClusterSteps, type ClusterSecrets } from "../plan";
import { formatIssue, loadStackFile, StackValidationError, type StackSpec } from "../stack";
import { planMachine } from "../steps/plan";

/** One step as render writes it: its files with their content, its scripts. */
interface RenderedStep {
  name: string;
  title: string;
  files: { path: string; mode: string; owner: string; group: string; content: string; secret: boolean }[];
  script: string;
  deleteScript?: string;
}

/**
 * Secrets for render only: a PKI made here and thrown away with the output (`pulumi up` makes the cluster's own
 * and keeps it a Pulumi secret), so that the files made of secrets show what they hold.
 */
function throwawaySecrets(spec: StackSpec): ClusterSecrets {
  const pki = generateClusterPki({ clusterName: spec.cluster.name });
  const etcd = etcdClusterOf(spec);
  const etcdPki = etcd && generateEtcdPki({ clusterName: etcd.name, members: etcd.members });
  return {
    ...pki,
    externalEtcdCaCert: etcdPki?.caCert ?? "",
    externalEtcdClientCert: etcdPki?.clientCert ?? "",
    externalEtcdClientKey: etcdPki?.clientKey ?? "",
  };
}

/** The machine's node steps, then the cluster steps that run on it (kubeadm, token, registrations, add-ons). */
function machineSteps(spec: StackSpec, machineName: string): RenderedStep[] {
  const machine = spec.machines.find((m) => m.name === machineName)!;
  const nodeSteps = planMachine(spec, machine).map((planned) => ({
    name: planned.step.name,
    title: planned.step.title,
    files: planned.files.map((f) => ({ ...f, secret: false })),
    script: planned.script,
    deleteScript: planned.deleteScript,
  }));
  const clusterSteps = planClusterSteps(spec, DEFAULT_PINS, etcdClusterOf(spec)).filter(
    (step) => step.machine === machineName,
  );
  const secrets = clusterSteps.some((step) => step.files.some((f) => !("text" in f.content)))
    ? throwawaySecrets(spec)
    : undefined;
  return [
    ...nodeSteps,
    ...clusterSteps.map((step) => ({
      // A registration runs on the first control plane for another machine: its id names that machine.
      name: step.step === "registration" ? step.id : step.step,
      title: step.title,
      files: step.files.map((f) => ({
        path: f.path,
        mode: f.mode,
        owner: f.owner,
        group: f.group,
        content: "text" in f.content ? f.content.text : fileContent(f, secrets!),
        secret: isSecretFile(f),
      })),
      script: step.script,
      deleteScript: step.deleteScript,
    })),
  ];
}

/**
 * `nodeforge render FILE --machine NAME [--out DIR]`: writes what would go onto the machine, for review:
 * DIR/files/<absolute path> (each managed file), DIR/steps/NN-<step>.sh and NN-<step>.delete.sh, and
 * DIR/MANIFEST listing every file's mode and owner. Every step that runs on the machine is there: its node
 * steps, then the cluster's steps that run on it. Files made of the cluster's secrets hold a throwaway PKI's
 * (marked `secret` in MANIFEST, written mode 0600).
 */
export function renderCommand(
  file: string,
  machineName: string,
  outDir: string,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): number {
  let spec;
  try {
    spec = loadStackFile(file);
  } catch (error) {
    if (!(error instanceof StackValidationError)) throw error;
    for (const issue of error.issues) err.write(`${formatIssue(issue)}\n`);
    return 2;
  }
  if (!spec.machines.some((m) => m.name === machineName)) {
    err.write(`${file}: no machine named '${machineName}'; machines: ${spec.machines.map((m) => m.name).join(", ")}\n`);
    return 2;
  }
  const manifest: string[] = [];
  const write = (path: string, content: string, mode: number) => {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content, { mode });
    // The mode applies to new files only: a file of an earlier render keeps its own otherwise.
    chmodSync(path, mode);
  };
  machineSteps(spec, machineName).forEach((step, index) => {
    const prefix = `${String(index + 1).padStart(2, "0")}-${step.name}`;
    write(join(outDir, "steps", `${prefix}.sh`), step.script, 0o755);
    manifest.push(`step ${prefix}: ${step.title}`);
    if (step.deleteScript !== undefined) write(join(outDir, "steps", `${prefix}.delete.sh`), step.deleteScript, 0o755);
    for (const managed of step.files) {
      write(join(outDir, "files", managed.path), managed.content, managed.secret ? 0o600 : 0o644);
      const owner = `mode ${managed.mode} owner ${managed.owner}:${managed.group}`;
      manifest.push(`  file ${managed.path} ${owner}${managed.secret ? " secret (throwaway value)" : ""}`);
    }
  });
  write(join(outDir, "MANIFEST"), `${manifest.join("\n")}\n`, 0o644);
  out.write(`${machineName}: wrote ${manifest.length} entries to ${outDir}\n`);
  return 0;
}
