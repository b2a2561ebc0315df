/**
 * Turns prepared nodes into a cluster, in this order (each step waits for the previous with dependsOn):
 * kubeadm init on the first control-plane machine -> control-plane joins, one at a time -> worker joins, in
 * parallel -> kube-proxy applied as a DaemonSet. Secrets (CA keys, bootstrap token, certificate key) come from
 * ClusterPki and stay Pulumi secrets: the files carrying them are written mode 0600 with secret content.
 */
import * as pulumi from "@pulumi/pulumi";
import {
  ADMIN_KUBECONFIG,
  controlPlaneMachines,
  KUBEADM_INIT_CONFIG,
  KUBEADM_JOIN_CONFIG,
  kubeadmInitFile,
  kubeadmJoinFile,
  kubeProxyManifestFile,
  KUBE_PROXY_MANIFEST,
} from "../cluster-config";
import type { ClusterPki } from "../pki";
import { render } from "../render";
import { isControlPlane, type MachineSpec, type StackSpec } from "../stack/types";
import { sha256 } from "../steps/hash";
import { ownedPaths } from "../steps/owned-paths";
import { rootFile, type ManagedFile } from "../steps/types";
import { STATE_DIR } from "../steps/constants";
import type { Node } from "./node";
import { privilegeOf, remoteStep, type StepFile } from "./remote-step";

const PKI_DIR = "/etc/kubernetes/pki";

/** Values the bootstrap scripts share with the node steps' prelude. */
function preludeValues(machine: MachineSpec, step: string): Record<string, unknown> {
  return { machine: machine.name, step, stateDir: STATE_DIR };
}

function secretFile(path: string, content: pulumi.Output<string>): StepFile {
  return { path, content: pulumi.secret(content), mode: "0600", owner: "root", group: "root", secret: true };
}

function publicFile(path: string, content: pulumi.Output<string>): StepFile {
  return { path, content, mode: "0644", owner: "root", group: "root" };
}

/** The CAs and the service-account key kubeadm init finds in place instead of generating its own. */
function pkiFiles(pki: ClusterPki): StepFile[] {
  return [
    publicFile(`${PKI_DIR}/ca.crt`, pki.caCert),
    secretFile(`${PKI_DIR}/ca.key`, pki.caKey),
    publicFile(`${PKI_DIR}/front-proxy-ca.crt`, pki.frontProxyCaCert),
    secretFile(`${PKI_DIR}/front-proxy-ca.key`, pki.frontProxyCaKey),
    publicFile(`${PKI_DIR}/etcd/ca.crt`, pki.etcdCaCert),
    secretFile(`${PKI_DIR}/etcd/ca.key`, pki.etcdCaKey),
    secretFile(`${PKI_DIR}/sa.key`, pki.serviceAccountKey),
    publicFile(`${PKI_DIR}/sa.pub`, pki.serviceAccountPub),
  ];
}

/** A kubeadm config file rendered inside the secrets' apply: its content is secret as a whole. */
function kubeadmFile(file: pulumi.Output<ManagedFile>, path: string): StepFile {
  return secretFile(
    path,
    file.apply((f) => f.content),
  );
}

/** What changes a step's files: their paths and (secret-derived) contents, hashed so no secret leaks. */
function filesTrigger(files: StepFile[]): pulumi.Output<string> {
  return pulumi
    .all(files.map((f) => pulumi.output(f.content)))
    .apply((contents) => sha256(files.map((f, i) => `${f.path}\0${f.mode}\0${contents[i] ?? ""}`).join("\0")));
}

function resetScript(machine: MachineSpec, files: StepFile[], step: string): string {
  const owned = ownedPaths(files.map((f) => rootFile(f.path, "", f.mode)));
  return render("scripts/kubeadm-reset.sh.hbs", { ...preludeValues(machine, step), owned });
}

export interface BootstrapArgs {
  stack: StackSpec;
  nodes: Node[];
  pki: ClusterPki;
}

/** Creates the bootstrap resources, each under the Node it runs on; returns the last one (kube-proxy applied). */
export function bootstrapCluster(args: BootstrapArgs): pulumi.Resource {
  const { stack, pki } = args;
  const nodeOf = new Map(args.nodes.map((n) => [n.machineName, n]));
  const node = (machine: MachineSpec) => nodeOf.get(machine.name) as Node;
  const [first, ...otherControlPlanes] = controlPlaneMachines(stack);
  if (!first) throw new Error(`${stack.file}: machines: no control-plane machine to run kubeadm init on`);
  const secrets = pulumi.all([pki.bootstrapToken, pki.certificateKey, pki.caCertHash]);

  const initFiles = [
    ...pkiFiles(pki),
    kubeadmFile(
      secrets.apply(([bootstrapToken, certificateKey]) =>
        kubeadmInitFile(stack, first, { bootstrapToken, certificateKey }),
      ),
      KUBEADM_INIT_CONFIG,
    ),
  ];
  const init = remoteStep(
    node(first),
    {
      name: `${first.name}-kubeadm-init`,
      access: node(first).access,
      files: initFiles,
      script: render("scripts/kubeadm-init.sh.hbs", {
        ...preludeValues(first, "kubeadm-init"),
        adminConf: ADMIN_KUBECONFIG,
        config: KUBEADM_INIT_CONFIG,
      }),
      deleteScript: resetScript(first, initFiles, "kubeadm-init"),
      triggers: [filesTrigger(initFiles)],
      dependsOn: [node(first).ready],
    },
    privilegeOf(node(first).access, first.ssh.sudo),
  );

  const join = (machine: MachineSpec, after: pulumi.Resource[]) => {
    const files = [
      kubeadmFile(
        secrets.apply(([bootstrapToken, certificateKey, caCertHash]) =>
          kubeadmJoinFile(stack, machine, {
            bootstrapToken,
            caCertHashes: [caCertHash],
            ...(isControlPlane(machine) ? { certificateKey } : {}),
          }),
        ),
        KUBEADM_JOIN_CONFIG,
      ),
    ];
    return remoteStep(
      node(machine),
      {
        name: `${machine.name}-kubeadm-join`,
        access: node(machine).access,
        files,
        script: render("scripts/kubeadm-join.sh.hbs", {
          ...preludeValues(machine, "kubeadm-join"),
          config: KUBEADM_JOIN_CONFIG,
        }),
        deleteScript: resetScript(machine, files, "kubeadm-join"),
        triggers: [filesTrigger(files)],
        dependsOn: [node(machine).ready, ...after],
      },
      privilegeOf(node(machine).access, machine.ssh.sudo),
    );
  };

  // Control-plane machines join one at a time: each adds an etcd member, and etcd grows one member at a time.
  let controlPlaneDone: pulumi.Resource = init;
  for (const machine of otherControlPlanes) controlPlaneDone = join(machine, [controlPlaneDone]);
  const workers = stack.machines.filter((m) => !isControlPlane(m)).map((m) => join(m, [controlPlaneDone]));

  const manifest = kubeProxyManifestFile(stack);
  const proxyFiles = [publicFile(manifest.path, pulumi.output(manifest.content))];
  const owned = ownedPaths([manifest]);
  return remoteStep(
    node(first),
    {
      name: `${first.name}-kube-proxy`,
      access: node(first).access,
      files: proxyFiles,
      script: render("scripts/kube-proxy-apply.sh.hbs", {
        ...preludeValues(first, "kube-proxy"),
        adminConf: ADMIN_KUBECONFIG,
        manifest: KUBE_PROXY_MANIFEST,
      }),
      deleteScript: render("scripts/kube-proxy-delete.sh.hbs", {
        ...preludeValues(first, "kube-proxy"),
        adminConf: ADMIN_KUBECONFIG,
        manifest: KUBE_PROXY_MANIFEST,
        owned,
      }),
      triggers: [sha256(manifest.content)],
      dependsOn: [controlPlaneDone, ...workers],
    },
    privilegeOf(node(first).access, first.ssh.sudo),
  );
}
