/**
 * The cluster's steps after every node is prepared, as plain data: kubeadm init on the first control-plane
 * machine -> the bootstrap token -> control-plane joins, one at a time -> worker joins, in parallel -> every joined
 * machine's Node registered (on the first control plane) -> the control planes' upgrades (upgrade-steps.ts: they do
 * nothing while the machines run the stack's version) -> kube-proxy applied as a DaemonSet and the CNI plugin's
 * manifest (stack `cni`), one step -> the workers' upgrades, batch by batch. Pure: no Pulumi, no SSH. A file whose
 * content comes from the cluster's secrets (CAs, keys, the
 * bootstrap token) names the secret, or renders from all of them; the executor (modules/components) fills them in
 * from ClusterPki and EtcdPki, `nodeforge render` from a throwaway PKI.
 *
 * With an external etcd cluster (stack `etcd.external`), kubeadm init waits for every etcd member, and every
 * control-plane machine gets the etcd CA and the API servers' client certificate and key in EXTERNAL_ETCD_DIR, the
 * files kubeadm's `etcd.external` names; the stacked etcd CA is not written.
 */
import {
  ADMIN_KUBECONFIG,
  BOOTSTRAP_KUBELET_CONF,
  CNI_DIR,
  cniLeftovers,
  controlPlaneMachines,
  KUBEADM_INIT_CONFIG,
  KUBEADM_JOIN_CONFIG,
  kubeadmInitFile,
  kubeadmJoinFile,
  kubeadmLeftovers,
  KUBELET_KUBECONFIG,
  kubeProxyManifestFile,
  KUBE_PROXY_MANIFEST,
  KUBE_VIP_MANIFEST,
  kubeVipManifestFile,
  resolveCni,
  resumeFlag,
  SUPER_ADMIN_KUBECONFIG,
  usesKubeVip,
  type ExternalEtcd,
  type ResolvedCni,
} from "../cluster-config";
import { etcdClientUrls, type EtcdCluster } from "../etcd";
import type { Pins } from "../pins";
import { render } from "../render";
import { isControlPlane, type MachineSpec, type StackSpec } from "../stack";
import { STATE_DIR, ownedPaths, rootFile, preludeValues } from "../steps";
import { planControlPlaneUpgrades, planWorkerUpgrades } from "./upgrade-steps";
import { isSecretFile, type PlannedContent, type PlannedFile, type PlannedStep } from "./types";

const PKI_DIR = "/etc/kubernetes/pki";
/** The machines the node-registrations step saw joined at its last run (those that leave are drained). */
const REGISTERED_NODES_FILE = `${STATE_DIR}/registered-nodes`;
/** The bootstrap token (`<id>.<secret>`) for the token step; root-only. */
const BOOTSTRAP_TOKEN_FILE = "/etc/kubernetes/nodeforge/bootstrap-token";
/** Where every control-plane machine keeps what kube-apiserver needs to reach the external etcd cluster. */
export const EXTERNAL_ETCD_DIR = `${PKI_DIR}/etcd-external`;
export const EXTERNAL_ETCD_CA_FILE = `${EXTERNAL_ETCD_DIR}/ca.crt`;
export const EXTERNAL_ETCD_CERT_FILE = `${EXTERNAL_ETCD_DIR}/client.crt`;
export const EXTERNAL_ETCD_KEY_FILE = `${EXTERNAL_ETCD_DIR}/client.key`;

function file(path: string, content: PlannedContent): PlannedFile {
  const secret = isSecretFile({ path, mode: "", owner: "", group: "", content });
  return { path, mode: secret ? "0600" : "0644", owner: "root", group: "root", content };
}

/**
 * The CAs and the service-account key kubeadm finds in place instead of generating its own. The stacked etcd CA
 * only without an external etcd cluster (whose CA is EtcdPki's, see externalEtcdFiles).
 */
function pkiFiles(stackedEtcd: boolean): PlannedFile[] {
  return [
    file(`${PKI_DIR}/ca.crt`, { secretName: "caCert" }),
    file(`${PKI_DIR}/ca.key`, { secretName: "caKey" }),
    file(`${PKI_DIR}/front-proxy-ca.crt`, { secretName: "frontProxyCaCert" }),
    file(`${PKI_DIR}/front-proxy-ca.key`, { secretName: "frontProxyCaKey" }),
    ...(stackedEtcd
      ? [
          file(`${PKI_DIR}/etcd/ca.crt`, { secretName: "etcdCaCert" }),
          file(`${PKI_DIR}/etcd/ca.key`, { secretName: "etcdCaKey" }),
        ]
      : []),
    file(`${PKI_DIR}/sa.key`, { secretName: "serviceAccountKey" }),
    file(`${PKI_DIR}/sa.pub`, { secretName: "serviceAccountPub" }),
  ];
}

/** The external etcd cluster's CA and the API servers' client certificate and key, for every control plane. */
function externalEtcdFiles(etcd: EtcdCluster | undefined): PlannedFile[] {
  if (!etcd) return [];
  return [
    file(EXTERNAL_ETCD_CA_FILE, { secretName: "externalEtcdCaCert" }),
    file(EXTERNAL_ETCD_CERT_FILE, { secretName: "externalEtcdClientCert" }),
    file(EXTERNAL_ETCD_KEY_FILE, { secretName: "externalEtcdClientKey" }),
  ];
}

/** kubeadm's `etcd.external` for the external etcd cluster (files from externalEtcdFiles). */
function externalEtcdConfig(etcd: EtcdCluster): ExternalEtcd {
  return {
    endpoints: etcdClientUrls(etcd),
    caFile: EXTERNAL_ETCD_CA_FILE,
    certFile: EXTERNAL_ETCD_CERT_FILE,
    keyFile: EXTERNAL_ETCD_KEY_FILE,
  };
}

/**
 * kube-vip's static pod, on every control-plane machine before kubeadm runs there, so the virtual IP answers for
 * the control-plane endpoint from the first API server on. nodeforge's manifest mounts admin.conf.
 */
function kubeVipFiles(stack: StackSpec, machine: MachineSpec): PlannedFile[] {
  if (!usesKubeVip(stack)) return [];
  const manifest = kubeVipManifestFile(stack, machine, { bootstrap: false });
  return [{ ...manifest, content: { text: manifest.content } }];
}

function resetScript(stack: StackSpec, machine: MachineSpec, files: PlannedFile[], step: string): string {
  const owned = ownedPaths(files.map((f) => rootFile(f.path, "", f.mode)));
  const leftovers = cniLeftovers(stack);
  return render("scripts/kubeadm-reset.sh.hbs", {
    ...preludeValues(machine.name, step),
    owned,
    cniPaths: leftovers.paths,
    cniLinks: leftovers.links,
  });
}

/**
 * The cluster-network step's scripts, on the first control plane: apply kube-proxy's manifest (a file of the step),
 * then download, check, adapt and apply the CNI plugin's (stack `cni`; none with plugin none); delete both.
 */
export function clusterNetworkScripts(
  cni: ResolvedCni | undefined,
  machine: MachineSpec,
): { script: string; deleteScript: string } {
  const values = {
    ...preludeValues(machine.name, "cluster-network"),
    adminConf: ADMIN_KUBECONFIG,
    kubeProxyManifest: KUBE_PROXY_MANIFEST,
    // No plugin: false, not undefined (the strict template engine refuses undefined values).
    cni: cni !== undefined && {
      dir: CNI_DIR,
      url: cni.manifestUrl,
      sha256: cni.sha256,
      download: `${cni.manifestPath}.nodeforge-download`,
      manifest: cni.manifestPath,
      edits: cni.edits,
    },
  };
  const owned = [rootFile(KUBE_PROXY_MANIFEST, ""), ...(cni ? [rootFile(cni.manifestPath, "")] : [])];
  return {
    script: render("scripts/cluster-network.sh.hbs", values),
    deleteScript: render("scripts/cluster-network-delete.sh.hbs", { ...values, owned: ownedPaths(owned) }),
  };
}

/** sed expressions that point kube-vip's kubeconfig mount at another file (only the hostPath line matches). */
function kubeconfigSwitch(from: string, to: string): string {
  return `s#path: ${JSON.stringify(from)}#path: ${JSON.stringify(to)}#`;
}

/**
 * The init script: kubeadm init, with kube-vip given super-admin.conf for as long as init runs; an init cut off
 * part-way is finished by the next run. `stackedEtcd`: kubeadm runs etcd here (no external etcd).
 */
export function kubeadmInitScript(stack: StackSpec, machine: MachineSpec, stackedEtcd = true): string {
  const resume = { init: true, controlPlane: true, stackedEtcd };
  return render("scripts/kubeadm-init.sh.hbs", {
    ...preludeValues(machine.name, "kubeadm-init"),
    adminConf: ADMIN_KUBECONFIG,
    leftovers: kubeadmLeftovers(resume),
    resumeFlag: resumeFlag(resume),
    config: KUBEADM_INIT_CONFIG,
    kubeVip: usesKubeVip(stack),
    kubeVipManifest: KUBE_VIP_MANIFEST,
    toSuperAdmin: kubeconfigSwitch(ADMIN_KUBECONFIG, SUPER_ADMIN_KUBECONFIG),
    toAdmin: kubeconfigSwitch(SUPER_ADMIN_KUBECONFIG, ADMIN_KUBECONFIG),
  });
}

/** The join script: kubeadm join; a join cut off part-way is finished by the next run. */
export function kubeadmJoinScript(machine: MachineSpec, stackedEtcd: boolean): string {
  const resume = { init: false, controlPlane: isControlPlane(machine), stackedEtcd };
  return render("scripts/kubeadm-join.sh.hbs", {
    ...preludeValues(machine.name, "kubeadm-join"),
    config: KUBEADM_JOIN_CONFIG,
    adminConf: ADMIN_KUBECONFIG,
    kubeletConf: KUBELET_KUBECONFIG,
    bootstrapKubeletConf: BOOTSTRAP_KUBELET_CONF,
    node: machine.name,
    controlPlane: resume.controlPlane,
    stackedEtcd,
    leftovers: kubeadmLeftovers(resume),
    resumeFlag: resumeFlag(resume),
  });
}

/**
 * Every cluster step of the stack, in an order where each comes after what it waits for. `etcd`: the external
 * etcd cluster (stack `etcd.external`), absent for stacked etcd. `ready(machine)`: the id of the step after which a
 * machine (a node, or an etcd member) is prepared.
 */
export function planClusterSteps(
  stack: StackSpec,
  pins: Pins,
  etcd: EtcdCluster | undefined,
  ready: (machine: string) => string,
): PlannedStep[] {
  const [first, ...otherControlPlanes] = controlPlaneMachines(stack);
  if (!first) throw new Error(`${stack.file}: machines: no control-plane machine to run kubeadm init on`);
  const stackedEtcd = !etcd;
  const steps: PlannedStep[] = [];
  const add = (step: PlannedStep): string => {
    steps.push(step);
    return step.id;
  };

  const initOptions = etcd ? { externalEtcd: externalEtcdConfig(etcd) } : {};
  const initFiles = [
    ...kubeVipFiles(stack, first),
    ...pkiFiles(stackedEtcd),
    ...externalEtcdFiles(etcd),
    file(KUBEADM_INIT_CONFIG, {
      fromSecrets: (s) => kubeadmInitFile(stack, first, { bootstrapToken: s.bootstrapToken }, initOptions).content,
    }),
  ];
  const init = add({
    id: `${first.name}-kubeadm-init`,
    step: "kubeadm-init",
    machine: first.name,
    title: "kubeadm init: the first control plane, with nodeforge's CAs",
    files: initFiles,
    script: kubeadmInitScript(stack, first, stackedEtcd),
    deleteScript: resetScript(stack, first, initFiles, "kubeadm-init"),
    units: [],
    triggers: [],
    // An external etcd cluster must be up first: each member's step waits until its member is healthy.
    after: [ready(first.name), ...(etcd?.members.map((m) => ready(m.name)) ?? [])],
  });

  const join = (machine: MachineSpec, after: string): string => {
    const files = [
      // A control plane gets the cluster's CAs and service-account key as the first one did: kubeadm join then
      // needs no certificates uploaded by init (deleted by kubeadm after two hours), so it may join any time later.
      ...(isControlPlane(machine)
        ? [...kubeVipFiles(stack, machine), ...pkiFiles(stackedEtcd), ...externalEtcdFiles(etcd)]
        : []),
      file(KUBEADM_JOIN_CONFIG, {
        fromSecrets: (s) =>
          kubeadmJoinFile(stack, machine, { bootstrapToken: s.bootstrapToken, caCertHashes: [s.caCertHash] }).content,
      }),
    ];
    return add({
      id: `${machine.name}-kubeadm-join`,
      step: "kubeadm-join",
      machine: machine.name,
      title: `kubeadm join as ${isControlPlane(machine) ? "a control plane" : "a worker"}`,
      files,
      script: kubeadmJoinScript(machine, stackedEtcd),
      deleteScript: resetScript(stack, machine, files, "kubeadm-join"),
      units: [],
      triggers: [],
      after: [ready(machine.name), after],
    });
  };

  /**
   * On the first control plane, before any machine joins: issues the bootstrap token afresh (2 hours). Re-run
   * whenever the set of joining machines changes, so a machine added days later finds a valid token.
   */
  const bootstrapToken = (joiningNames: string[]): string => {
    const values = preludeValues(first.name, "bootstrap-token");
    return add({
      id: `${first.name}-bootstrap-token`,
      step: "bootstrap-token",
      machine: first.name,
      title: "Issue the bootstrap token the other machines join with (valid 2 hours)",
      files: [file(BOOTSTRAP_TOKEN_FILE, { secretName: "bootstrapToken" })],
      script: render("scripts/bootstrap-token.sh.hbs", {
        ...values,
        adminConf: ADMIN_KUBECONFIG,
        tokenFile: BOOTSTRAP_TOKEN_FILE,
        ttlHours: 2,
      }),
      deleteScript: render("scripts/remove-files.sh.hbs", {
        ...values,
        owned: ownedPaths([rootFile(BOOTSTRAP_TOKEN_FILE, "", "0600")]),
      }),
      units: [],
      triggers: [[...joiningNames].sort().join(",")],
      after: [init],
    });
  };

  /**
   * On the first control plane, once every machine joined: waits until each one's Node is registered; a machine
   * dropped from the stack file is drained and its Node deleted (before its own kubeadm reset, which Pulumi runs
   * after every update); on destroy, every joined machine is drained and its Node deleted.
   */
  const registrations = (joined: string[]): string => {
    const values = {
      ...preludeValues(first.name, "node-registrations"),
      adminConf: ADMIN_KUBECONFIG,
      nodes: joining,
      listFile: REGISTERED_NODES_FILE,
    };
    return add({
      id: `${first.name}-node-registrations`,
      step: "node-registrations",
      machine: first.name,
      title: "Wait for every joined machine's Node; drain and delete the Node of a machine that leaves",
      files: [],
      script: render("scripts/node-registrations.sh.hbs", values),
      deleteScript: render("scripts/node-registrations-delete.sh.hbs", values),
      units: [],
      triggers: [],
      after: joined,
    });
  };

  // Control-plane machines join one at a time: with stacked etcd each adds an etcd member, and etcd grows one member
  // at a time; workers join in parallel after the last of them.
  const joining = stack.machines.filter((m) => m.name !== first.name).map((m) => m.name);
  let controlPlaneDone = joining.length > 0 ? bootstrapToken(joining) : init;
  for (const machine of otherControlPlanes) controlPlaneDone = join(machine, controlPlaneDone);
  const workers = stack.machines.filter((m) => !isControlPlane(m)).map((m) => join(m, controlPlaneDone));
  const joined = joining.length > 0 ? registrations([controlPlaneDone, ...workers]) : init;

  // A new version reaches the control planes first, then kube-proxy (never newer than the API servers), then the
  // workers batch by batch; every upgrade step does nothing while the machines run the stack's version.
  const controlPlaneUpgrades = planControlPlaneUpgrades(stack, pins, joined);
  steps.push(...controlPlaneUpgrades.steps);
  const cni = resolveCni(stack, pins);
  const manifest = kubeProxyManifestFile(stack);
  const network = add({
    id: `${first.name}-cluster-network`,
    step: "cluster-network",
    machine: first.name,
    title: cni
      ? `Apply kube-proxy as a DaemonSet and the ${cni.plugin} manifest, checked against its sha256`
      : "Apply kube-proxy as a DaemonSet (no CNI plugin: stack cni.plugin none)",
    files: [file(manifest.path, { text: manifest.content })],
    // The script names the CNI manifest's URL, checksum and edits: a change to any of them applies it again.
    ...clusterNetworkScripts(cni, first),
    units: [],
    triggers: [],
    after: [controlPlaneUpgrades.done],
  });
  steps.push(...planWorkerUpgrades(stack, pins, network));
  return steps;
}
