/**
 * A Kubernetes cluster on machines you own, as one Pulumi component: the plan (modules/plan: every step of every
 * machine) executed, one MachineStep per planned step under the Node (or external etcd member) whose machine it
 * runs on, each waiting for what its plan says it comes after. Machines are prepared in parallel; the bootstrap
 * (kubeadm init, joins, kube-proxy, CNI) follows. Usable from any Pulumi TypeScript program: the stack may be a
 * stack file, or a stack document whose machines' addresses and host keys are other resources' outputs.
 */
import * as pulumi from "@pulumi/pulumi";
import { apiServerUrl } from "../cluster-config";
import { etcdClusterOf } from "../etcd";
import { DEFAULT_PINS, type Pins } from "../pins";
import { AdminCertificate, adminKubeconfig, ClusterPki, EtcdPki } from "../pki";
import { planCluster, usesSecrets, type PlannedStep } from "../plan";
import { clusterFacts, type Role, type StackSpec } from "../stack";
import { clusterCertificateExpiry } from "./certificate-expiry";
import type { SecretLookup } from "./connection";
import { ClusterFacts } from "./cluster-facts";
import { EtcdMember } from "./etcd-member";
import { Hypervisor } from "./hypervisor";
import { Node } from "./node";
import { clusterSecrets } from "./secrets";
import { resolveStack, type StackInput } from "./stack-input";
import { createStep, type PlanLookup, type StepHost, type StepResources } from "./steps";
import { clusterVms } from "./vm-secrets";

export interface ClusterArgs {
  /**
   * The stack: a stack file's path, a validated StackSpec (modules/stack), or the stack file's content as an object
   * whose machines' `address` and `hostKey` may be other resources' outputs.
   */
  stack: StackInput;
  /** Resolves the Pulumi config secrets the stack names (SSH keys, sudo passwords): `(key) => config.requireSecret(key)`. */
  secret: SecretLookup;
  /** Version pins and checksums; defaults to nodeforge's own (tests pass their doubles' checksums). */
  pins?: Pins;
}

export interface NodeSummary {
  name: string;
  role: Role;
  address: pulumi.Input<string>;
}

/** The plan's steps by id, checked to be the same steps as the plan made with stand-in addresses. */
function sameShape(shape: PlannedStep[], plan: PlannedStep[], label: string): PlanLookup {
  const outline = (steps: PlannedStep[]) =>
    steps.map((s) => [s.id, s.machine, s.after, s.files.map((f) => `${f.path} ${f.mode}`), s.units]);
  if (JSON.stringify(outline(shape)) !== JSON.stringify(outline(plan))) {
    throw new Error(`${label}: the machines' addresses changed which steps or files the plan has`);
  }
  const byId = new Map(plan.map((step) => [step.id, step]));
  return (id) => byId.get(id);
}

export class Cluster extends pulumi.ComponentResource {
  /** The validated stack (with stand-ins for addresses and host keys that other resources give). */
  readonly stack: StackSpec;
  readonly nodes: Node[];
  /** The external etcd cluster's members, in stack order; empty for stacked etcd. */
  readonly etcdMembers: EtcdMember[];
  /** The machines that host the stack's VMs, in stack order. */
  readonly hypervisors: Hypervisor[];
  /** Every step's resource, by planned id (`cp-1-install-containerd`, `cp-1-kubeadm-init`, ...). */
  readonly steps: StepResources = new Map();
  /** Name, role and address of every node, in stack order. */
  readonly nodeSummaries: NodeSummary[];
  /** The API server URL clients use (the control-plane endpoint, or the first control plane). */
  readonly apiEndpoint: pulumi.Output<string>;
  /** kubeconfig for the cluster admin (kubeadm:cluster-admins), signed by the cluster CA. A secret. */
  readonly adminKubeconfig: pulumi.Output<string>;
  /**
   * When the cluster's certificates expire (ISO 8601, UTC), by name: the CAs nodeforge made (`ca`, `front-proxy-ca`,
   * `etcd-ca` for stacked etcd, `external-etcd-ca`), the admin kubeconfig's client certificate (`admin`), an external
   * etcd cluster's client and member certificates, and kubeadm's on each control plane as read there after its init,
   * join, upgrade or renewal and on refresh (`cp-1/apiserver`, `cp-1/etcd-server`, `cp-1/admin.conf`, ...: a year).
   */
  readonly certificateExpiry: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: ClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nodeforge:cluster:Cluster", name, {}, opts);
    const pins = args.pins ?? DEFAULT_PINS;
    const input = resolveStack(args.stack, `Cluster ${name}`, pins);
    const stack = (this.stack = input.shape);
    const plan = planCluster(stack, pins);
    const resolved = input.known?.apply((known) => sameShape(plan, planCluster(known, pins), stack.file));

    // Checked against the facts the last run recorded before anything else is made or changed: the PKI, the VMs' host
    // keys and every machine's first step wait for them.
    const facts = new ClusterFacts(`${name}-facts`, { file: stack.file, ...clusterFacts(stack) }, { parent: this });
    const afterFacts = { parent: this, dependsOn: [facts] };

    // A VM's host key is the one nodeforge generated for it: every connection pins that.
    const vms = clusterVms(
      name,
      stack.machines.filter((m) => m.vm),
      args.secret,
      afterFacts,
    );
    const reach = (machine: string) => {
      const given = input.reach.get(machine);
      const spec = stack.machines.find((m) => m.name === machine);
      return spec?.vm && vms ? { address: given?.address ?? spec.address, hostKey: vms.hostKey(machine) } : given;
    };
    this.hypervisors = stack.hypervisors.map(
      (hypervisor) => new Hypervisor(hypervisor.name, { hypervisor, secret: args.secret }, { parent: this }),
    );
    this.nodes = stack.machines.map(
      (machine) =>
        new Node(
          machine.name,
          { stack, machine, secret: args.secret, steps: [], reach: reach(machine.name) },
          { parent: this },
        ),
    );
    this.etcdMembers = (stack.etcd?.external.machines ?? []).map(
      (machine) =>
        new EtcdMember(machine.name, { machine, secret: args.secret, reach: reach(machine.name) }, { parent: this }),
    );
    const hosts = new Map<string, StepHost>(
      [...this.nodes, ...this.etcdMembers, ...this.hypervisors].map((host) => [
        host.machineName,
        { resource: host, access: host.access },
      ]),
    );

    const pki = new ClusterPki(`${name}-pki`, { clusterName: stack.cluster.name }, afterFacts);
    const admin = new AdminCertificate(
      `${name}-admin-certificate`,
      { caCert: pki.caCert, caKey: pki.caKey, renewal: stack.certificates.renewal },
      { parent: this },
    );
    const etcd = etcdClusterOf(stack);
    const etcdPki =
      etcd &&
      new EtcdPki(
        `${name}-etcd-pki`,
        // The members' certificates name their addresses: known ones only.
        { clusterName: etcd.name, members: input.known?.apply((k) => etcdClusterOf(k)!.members) ?? etcd.members },
        afterFacts,
      );
    const secrets = clusterSecrets(pki, etcdPki, vms?.secrets);
    for (const step of plan) {
      const host = hosts.get(step.machine);
      if (!host) throw new Error(`${stack.file}: step ${step.id} runs on ${step.machine}, which is no machine here`);
      createStep(step, host, this.steps, {
        ...(usesSecrets(step) ? { secrets } : {}),
        ...(resolved ? { resolved } : {}),
        first: [facts],
      });
    }

    this.nodeSummaries = stack.machines.map((m) => ({
      name: m.name,
      role: m.role,
      address: reach(m.name)?.address ?? m.address,
    }));
    this.apiEndpoint = input.known ? input.known.apply(apiServerUrl) : pulumi.output(apiServerUrl(stack));
    this.adminKubeconfig = pulumi.secret(
      pulumi
        .all([pki.caCert, admin.cert, admin.key, this.apiEndpoint])
        .apply(([caCert, clientCert, clientKey, server]) =>
          adminKubeconfig({ clusterName: stack.cluster.name, server, caCert, clientCert, clientKey }),
        ),
    );
    this.certificateExpiry = clusterCertificateExpiry({ stack, plan, steps: this.steps, pki, admin, etcdPki });
    this.registerOutputs({ nodes: this.nodeSummaries, apiEndpoint: this.apiEndpoint });
  }
}
