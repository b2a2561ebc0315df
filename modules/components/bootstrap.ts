/**
 * Turns prepared nodes into a cluster, in this order (each step waits for the previous with dependsOn):
 * kubeadm init on the first control-plane machine -> control-plane joins, one at a time -> worker joins, in
 * parallel -> kube-proxy applied as a DaemonSet -> the CNI plugin's manifest (stack `cni`). Secrets (CA keys, bootstrap token) come from
 * ClusterPki and stay Pulumi secrets: the files carrying them are written mode 0600 with secret content.
 *
 * With an external etcd cluster (stack `etcd.external`), kubeadm init waits for every EtcdMember, and every
 * control-plane machine gets the etcd CA and EtcdPki's client certificate and key in EXTERNAL_ETCD_DIR, the files
 * kubeadm's `etcd.external` names; ClusterPki's stacked etcd CA is not written.
 */
import * as pulumi from "@pulumi/pulumi";
import {
  ADMIN_KUBECONFIG,
  CNI_DIR,
  cniLeftovers,
  controlPlaneMachines,
  KUBEADM_INIT_CONFIG,
  KUBEADM_JOIN_CONFIG,
  kubeadmInitFile,
  kubeadmJoinFile,
  kubeProxyManifestFile,
  KUBE_PROXY_MANIFEST,
  KUBE_VIP_MANIFEST,
  kubeVipManifestFile,
  resolveCni,
  SUPER_ADMIN_KUBECONFIG,
  usesKubeVip,
  type ExternalEtcd,
  type ResolvedCni,
} from "../cluster-config";
import { etcdClientUrls, type EtcdCluster } from "../etcd";
import { DEFAULT_PINS, type Pins } from "../pins";
import type { ClusterPki, EtcdPki } from "../pki";
import { render } from "../render";
import { isControlPlane, type MachineSpec, type StackSpec } from "../stack/types";
import { sha256 } from "../steps/hash";
import { ownedPaths } from "../steps/owned-paths";
import { rootFile, type ManagedFile } from "../steps/types";
import { preludeValues } from "../steps/values";
import type { EtcdMember } from "./etcd-member";
import type { Node } from "./node";
import { filesTrigger, remoteStep, type RemoteStepArgs, type StepFile } from "./remote-step";

const PKI_DIR = "/etc/kubernetes/pki";
/** The bootstrap token (`<id>.<secret>`) for the token step; root-only. */
const BOOTSTRAP_TOKEN_FILE = "/etc/kubernetes/nodeforge/bootstrap-token";
/** Where every control-plane machine keeps what kube-apiserver needs to reach the external etcd cluster. */
export const EXTERNAL_ETCD_DIR = `${PKI_DIR}/etcd-external`;
export const EXTERNAL_ETCD_CA_FILE = `${EXTERNAL_ETCD_DIR}/ca.crt`;
export const EXTERNAL_ETCD_CERT_FILE = `${EXTERNAL_ETCD_DIR}/client.crt`;
export const EXTERNAL_ETCD_KEY_FILE = `${EXTERNAL_ETCD_DIR}/client.key`;

function secretFile(path: string, content: pulumi.Output<string>): StepFile {
  return { path, content: pulumi.secret(content), mode: "0600", owner: "root", group: "root", secret: true };
}

function publicFile(path: string, content: pulumi.Output<string>): StepFile {
  return { path, content, mode: "0644", owner: "root", group: "root" };
}

/**
 * The CAs and the service-account key kubeadm init finds in place instead of generating its own. The stacked etcd
 * CA only without an external etcd cluster (whose CA is EtcdPki's, see externalEtcdFiles).
 */
function pkiFiles(pki: ClusterPki, stackedEtcd: boolean): StepFile[] {
  return [
    publicFile(`${PKI_DIR}/ca.crt`, pki.caCert),
    secretFile(`${PKI_DIR}/ca.key`, pki.caKey),
    publicFile(`${PKI_DIR}/front-proxy-ca.crt`, pki.frontProxyCaCert),
    secretFile(`${PKI_DIR}/front-proxy-ca.key`, pki.frontProxyCaKey),
    ...(stackedEtcd
      ? [publicFile(`${PKI_DIR}/etcd/ca.crt`, pki.etcdCaCert), secretFile(`${PKI_DIR}/etcd/ca.key`, pki.etcdCaKey)]
      : []),
    secretFile(`${PKI_DIR}/sa.key`, pki.serviceAccountKey),
    publicFile(`${PKI_DIR}/sa.pub`, pki.serviceAccountPub),
  ];
}

/** The external etcd cluster's CA and the API servers' client certificate and key, for every control plane. */
function externalEtcdFiles(etcd: ExternalEtcdMembers | undefined): StepFile[] {
  if (!etcd) return [];
  return [
    publicFile(EXTERNAL_ETCD_CA_FILE, etcd.pki.caCert),
    publicFile(EXTERNAL_ETCD_CERT_FILE, etcd.pki.clientCert),
    secretFile(EXTERNAL_ETCD_KEY_FILE, etcd.pki.clientKey),
  ];
}

/** kubeadm's `etcd.external` for the external etcd cluster (files from externalEtcdFiles). */
function externalEtcdConfig(etcd: ExternalEtcdMembers): ExternalEtcd {
  return {
    endpoints: etcdClientUrls(etcd.cluster),
    caFile: EXTERNAL_ETCD_CA_FILE,
    certFile: EXTERNAL_ETCD_CERT_FILE,
    keyFile: EXTERNAL_ETCD_KEY_FILE,
  };
}

/** A kubeadm config file rendered inside the secrets' apply: its content is secret as a whole. */
function kubeadmFile(file: pulumi.Output<ManagedFile>, path: string): StepFile {
  return secretFile(
    path,
    file.apply((f) => f.content),
  );
}

function resetScript(stack: StackSpec, machine: MachineSpec, files: StepFile[], step: string): string {
  const owned = ownedPaths(files.map((f) => rootFile(f.path, "", f.mode)));
  const leftovers = cniLeftovers(stack);
  return render("scripts/kubeadm-reset.sh.hbs", {
    ...preludeValues(machine.name, step),
    owned,
    cniPaths: leftovers.paths,
    cniLinks: leftovers.links,
  });
}

/** The CNI step's scripts: download, check, adapt and apply the manifest; delete what it created. */
export function cniScripts(cni: ResolvedCni, machine: MachineSpec): { script: string; deleteScript: string } {
  const values = {
    ...preludeValues(machine.name, "cni"),
    adminConf: ADMIN_KUBECONFIG,
    dir: CNI_DIR,
    url: cni.manifestUrl,
    sha256: cni.sha256,
    download: `${cni.manifestPath}.nodeforge-download`,
    manifest: cni.manifestPath,
    edits: cni.edits,
  };
  return {
    script: render("scripts/cni-apply.sh.hbs", values),
    deleteScript: render("scripts/cni-delete.sh.hbs", {
      ...values,
      owned: ownedPaths([rootFile(cni.manifestPath, "")]),
    }),
  };
}

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

/**
 * kube-vip's static pod, on every control-plane machine before kubeadm runs there, so the virtual IP answers
 * for the control-plane endpoint from the first API server on. nodeforge's manifest mounts admin.conf.
 */
function kubeVipFiles(stack: StackSpec, machine: MachineSpec): StepFile[] {
  if (!usesKubeVip(stack)) return [];
  const file = kubeVipManifestFile(stack, machine, { bootstrap: false });
  return [{ ...file, content: pulumi.output(file.content) }];
}

/** sed expressions that point kube-vip's kubeconfig mount at another file (only the hostPath line matches). */
function kubeconfigSwitch(from: string, to: string): string {
  return `s#path: ${JSON.stringify(from)}#path: ${JSON.stringify(to)}#`;
}

/** The init script: kubeadm init, with kube-vip given super-admin.conf for as long as init runs. */
export function kubeadmInitScript(stack: StackSpec, machine: MachineSpec): string {
  return render("scripts/kubeadm-init.sh.hbs", {
    ...preludeValues(machine.name, "kubeadm-init"),
    adminConf: ADMIN_KUBECONFIG,
    config: KUBEADM_INIT_CONFIG,
    kubeVip: usesKubeVip(stack),
    kubeVipManifest: KUBE_VIP_MANIFEST,
    toSuperAdmin: kubeconfigSwitch(ADMIN_KUBECONFIG, SUPER_ADMIN_KUBECONFIG),
    toAdmin: kubeconfigSwitch(SUPER_ADMIN_KUBECONFIG, ADMIN_KUBECONFIG),
  });
}

/** Creates the bootstrap resources, each under the Node it runs on; returns the last one (kube-proxy or CNI applied). */
export function bootstrapCluster(args: BootstrapArgs): pulumi.Resource {
  const { stack, pki, etcd } = args;
  const nodeOf = new Map(args.nodes.map((n) => [n.machineName, n]));
  const node = (machine: MachineSpec) => nodeOf.get(machine.name) as Node;
  /** A step on `machine`, under its Node, over its connection and with its sudo settings. */
  const stepOn = (machine: MachineSpec, step: Omit<RemoteStepArgs, "access" | "machine">) =>
    remoteStep(node(machine), { ...step, machine: machine.name, access: node(machine).access });
  const [first, ...otherControlPlanes] = controlPlaneMachines(stack);
  if (!first) throw new Error(`${stack.file}: machines: no control-plane machine to run kubeadm init on`);
  const secrets = pulumi.all([pki.bootstrapToken, pki.caCertHash]);

  const initOptions = etcd ? { externalEtcd: externalEtcdConfig(etcd) } : {};
  const initFiles = [
    ...kubeVipFiles(stack, first),
    ...pkiFiles(pki, !etcd),
    ...externalEtcdFiles(etcd),
    kubeadmFile(
      secrets.apply(([bootstrapToken]) => kubeadmInitFile(stack, first, { bootstrapToken }, initOptions)),
      KUBEADM_INIT_CONFIG,
    ),
  ];
  const init = stepOn(first, {
    step: "kubeadm-init",
    files: initFiles,
    script: kubeadmInitScript(stack, first),
    deleteScript: resetScript(stack, first, initFiles, "kubeadm-init"),
    triggers: [filesTrigger(initFiles)],
    // An external etcd cluster must be up first: each member's step waits until its member is healthy.
    dependsOn: [node(first).ready, ...(etcd?.members.map((m) => m.ready) ?? [])],
  });

  const join = (machine: MachineSpec, after: pulumi.Resource[]) => {
    const files = [
      // A control plane gets the cluster's CAs and service-account key as the first one did: kubeadm join then
      // needs no certificates uploaded by init (deleted by kubeadm after two hours), so it may join any time later.
      ...(isControlPlane(machine)
        ? [...kubeVipFiles(stack, machine), ...pkiFiles(pki, !etcd), ...externalEtcdFiles(etcd)]
        : []),
      kubeadmFile(
        secrets.apply(([bootstrapToken, caCertHash]) =>
          kubeadmJoinFile(stack, machine, { bootstrapToken, caCertHashes: [caCertHash] }),
        ),
        KUBEADM_JOIN_CONFIG,
      ),
    ];
    return stepOn(machine, {
      step: "kubeadm-join",
      files,
      script: render("scripts/kubeadm-join.sh.hbs", {
        ...preludeValues(machine.name, "kubeadm-join"),
        config: KUBEADM_JOIN_CONFIG,
      }),
      deleteScript: resetScript(stack, machine, files, "kubeadm-join"),
      triggers: [filesTrigger(files)],
      dependsOn: [node(machine).ready, ...after],
    });
  };

  /**
   * On the first control plane, before any machine joins: issues the bootstrap token afresh (2 hours). Re-run
   * whenever the set of joining machines changes, so a machine added days later finds a valid token.
   */
  function bootstrapToken(machine: MachineSpec, joiningNames: string[], after: pulumi.Resource): pulumi.Resource {
    const files = [secretFile(BOOTSTRAP_TOKEN_FILE, pki.bootstrapToken)];
    const joiners = [...joiningNames].sort().join(",");
    return stepOn(machine, {
      step: "bootstrap-token",
      files,
      script: render("scripts/bootstrap-token.sh.hbs", {
        ...preludeValues(machine.name, "bootstrap-token"),
        adminConf: ADMIN_KUBECONFIG,
        tokenFile: BOOTSTRAP_TOKEN_FILE,
        ttlHours: 2,
      }),
      deleteScript: render("scripts/remove-files.sh.hbs", {
        ...preludeValues(machine.name, "bootstrap-token"),
        owned: ownedPaths([rootFile(BOOTSTRAP_TOKEN_FILE, "", "0600")]),
      }),
      triggers: [filesTrigger(files).apply((hash) => sha256(`${hash}\0${joiners}`))],
      dependsOn: [after],
    });
  }

  /**
   * On the first control plane: waits until the joined machine's Node is registered; on destroy, drains it and
   * deletes the Node before the machine's own kubeadm reset (which depends on nothing of this, so runs after).
   */
  const registration = (machine: MachineSpec, joined: pulumi.Resource) => {
    const values = { ...preludeValues(first.name, "registration"), adminConf: ADMIN_KUBECONFIG, node: machine.name };
    const script = render("scripts/node-registered.sh.hbs", values);
    return stepOn(first, {
      step: "registration",
      name: `${machine.name}-registration`,
      files: [],
      script,
      deleteScript: render("scripts/node-drain.sh.hbs", values),
      // No files: the script itself is what a change re-runs.
      triggers: [sha256(script)],
      dependsOn: [joined],
    });
  };

  // Control-plane machines join one at a time: with stacked etcd each adds an etcd member, and etcd grows one member
  // at a time.
  const joining = stack.machines.filter((m) => m.name !== first.name).map((m) => m.name);
  let controlPlaneDone: pulumi.Resource = joining.length > 0 ? bootstrapToken(first, joining, init) : init;
  const registered: pulumi.Resource[] = [];
  for (const machine of otherControlPlanes) {
    controlPlaneDone = join(machine, [controlPlaneDone]);
    registered.push(registration(machine, controlPlaneDone));
  }
  const workers = stack.machines
    .filter((m) => !isControlPlane(m))
    .map((m) => registration(m, join(m, [controlPlaneDone])));

  const manifest = kubeProxyManifestFile(stack);
  const proxyFiles = [publicFile(manifest.path, pulumi.output(manifest.content))];
  const owned = ownedPaths([manifest]);
  const kubeProxy = stepOn(first, {
    step: "kube-proxy",
    files: proxyFiles,
    script: render("scripts/kube-proxy-apply.sh.hbs", {
      ...preludeValues(first.name, "kube-proxy"),
      adminConf: ADMIN_KUBECONFIG,
      manifest: KUBE_PROXY_MANIFEST,
    }),
    deleteScript: render("scripts/kube-proxy-delete.sh.hbs", {
      ...preludeValues(first.name, "kube-proxy"),
      adminConf: ADMIN_KUBECONFIG,
      manifest: KUBE_PROXY_MANIFEST,
      owned,
    }),
    triggers: [sha256(manifest.content)],
    dependsOn: [controlPlaneDone, ...registered, ...workers],
  });

  const cni = resolveCni(stack, args.pins ?? DEFAULT_PINS);
  if (!cni) return kubeProxy;
  const { script, deleteScript } = cniScripts(cni, first);
  return stepOn(first, {
    step: "cni",
    files: [],
    script,
    deleteScript,
    // The script names the URL, checksum and edits: a change to any of them applies the manifest again.
    triggers: [sha256(script)],
    dependsOn: [kubeProxy],
  });
}
