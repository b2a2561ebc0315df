/**
 * The whole stack file as Pulumi resources: one Node per machine (prepared in parallel), then the cluster
 * bootstrap (kubeadm init, joins, kube-proxy) over them.
 */
import * as pulumi from "@pulumi/pulumi";
import { apiServerUrl } from "../cluster-config";
import { etcdClusterOf } from "../etcd";
import { adminKubeconfig, ClusterPki, EtcdPki } from "../pki";
import type { Pins } from "../pins";
import { isControlPlane, type StackSpec } from "../stack/types";
import type { SecretLookup } from "./connection";
import { bootstrapCluster, type ExternalEtcdMembers } from "./bootstrap";
import { EtcdMember } from "./etcd-member";
import { Node } from "./node";

export interface ClusterArgs {
  stack: StackSpec;
  /** Resolves the Pulumi config secrets the stack file names (SSH keys, sudo passwords). */
  secret: SecretLookup;
  /** Version pins and checksums; defaults to nodeforge's own (tests pass their doubles' checksums). */
  pins?: Pins;
}

export interface NodeSummary {
  name: string;
  role: string;
  address: string;
}

export class Cluster extends pulumi.ComponentResource {
  readonly nodes: Node[];
  /** The external etcd cluster's members, in stack-file order; empty for stacked etcd. */
  readonly etcdMembers: EtcdMember[];
  /** Name, role and address of every node, in stack-file order. */
  readonly nodeSummaries: NodeSummary[];
  /** The API server URL clients use (the control-plane endpoint, or the first control plane). */
  readonly apiEndpoint: string;
  /** kubeconfig for the cluster admin (kubeadm:cluster-admins), signed by the cluster CA. A secret. */
  readonly adminKubeconfig: pulumi.Output<string>;

  constructor(name: string, args: ClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nodeforge:cluster:Cluster", name, {}, opts);
    const { stack } = args;
    const build = (machines: StackSpec["machines"], controlPlaneReady: pulumi.Resource[]) =>
      machines.map(
        (machine) =>
          new Node(
            machine.name,
            { stack, machine, secret: args.secret, controlPlaneReady, pins: args.pins },
            { parent: this },
          ),
      );
    const controlPlane = build(stack.machines.filter(isControlPlane), []);
    const others = build(
      stack.machines.filter((m) => !isControlPlane(m)),
      controlPlane.map((n) => n.ready),
    );
    const byName = new Map([...controlPlane, ...others].map((n) => [n.machineName, n]));
    this.nodes = stack.machines.map((m) => byName.get(m.name) as Node);
    this.nodeSummaries = stack.machines.map((m) => ({ name: m.name, role: m.role, address: m.address }));

    const etcd = this.externalEtcd(name, args);
    this.etcdMembers = etcd?.members ?? [];

    const pki = new ClusterPki(`${name}-pki`, { clusterName: stack.cluster.name }, { parent: this });
    bootstrapCluster({
      stack,
      nodes: this.nodes,
      pki,
      ...(etcd ? { etcd } : {}),
      ...(args.pins ? { pins: args.pins } : {}),
    });
    this.apiEndpoint = apiServerUrl(stack);
    this.adminKubeconfig = pulumi.secret(
      pulumi
        .all([pki.caCert, pki.adminCert, pki.adminKey])
        .apply(([caCert, clientCert, clientKey]) =>
          adminKubeconfig({ clusterName: stack.cluster.name, server: this.apiEndpoint, caCert, clientCert, clientKey }),
        ),
    );
    this.registerOutputs({ nodes: this.nodeSummaries, apiEndpoint: this.apiEndpoint });
  }

  /** With `etcd.external`: one EtcdPki for the cluster, one EtcdMember per etcd machine (they start in parallel). */
  private externalEtcd(name: string, args: ClusterArgs): ExternalEtcdMembers | undefined {
    const { stack } = args;
    const cluster = etcdClusterOf(stack);
    if (!cluster) return undefined;
    const pki = new EtcdPki(
      `${name}-etcd-pki`,
      { clusterName: cluster.name, members: cluster.members },
      { parent: this },
    );
    const members = (stack.etcd?.external.machines ?? []).map(
      (machine) =>
        new EtcdMember(machine.name, { stack, machine, cluster, pki, secret: args.secret }, { parent: this }),
    );
    return { cluster, pki, members };
  }
}
