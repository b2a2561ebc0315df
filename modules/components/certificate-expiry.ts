/**
 * The stack's `certificateExpiry` output: when each of the cluster's certificates expires. Those nodeforge made are
 * in the program (its CAs, the admin's client certificate, an external etcd cluster's); kubeadm's on the control
 * planes are read on the machines by the steps that make or renew them (MachineStep `certificates`).
 */
import * as pulumi from "@pulumi/pulumi";
import { kubeadmCertificates } from "../cluster-config";
import { certificateExpiry, type AdminCertificate, type ClusterPki, type EtcdPki } from "../pki";
import type { PlannedStep } from "../plan";
import type { MachineStep } from "../remote";
import type { StackSpec } from "../stack";
import type { StepResources } from "./steps";

/** What the expiry is read from. */
export interface ExpirySources {
  stack: StackSpec;
  plan: PlannedStep[];
  steps: StepResources;
  pki: ClusterPki;
  admin: AdminCertificate;
  etcdPki?: EtcdPki;
}

/**
 * nodeforge's own certificates by name: `ca`, `front-proxy-ca`, `admin`, and `etcd-ca` for stacked etcd or an
 * external etcd cluster's (`external-etcd-ca`, `external-etcd-client`, `<member>/etcd-member`).
 */
function madeByNodeforge(sources: ExpirySources): pulumi.Output<Record<string, string>> {
  const { pki, admin, etcdPki } = sources;
  const external = etcdPki
    ? pulumi.all([etcdPki.caCert, etcdPki.clientCert, etcdPki.memberCerts]).apply(([ca, client, members]) => [
        ["external-etcd-ca", ca] as [string, string],
        // The API servers' client certificate for the etcd cluster, and each member's own.
        ["external-etcd-client", client] as [string, string],
        ...Object.entries(members).map(([member, { cert }]): [string, string] => [`${member}/etcd-member`, cert]),
      ])
    : undefined;
  return pulumi
    .all([pki.caCert, pki.frontProxyCaCert, pki.etcdCaCert, pulumi.unsecret(admin.cert), external])
    .apply(([ca, frontProxy, etcdCa, adminCert, externalEtcd]) =>
      expiryByName([
        ["ca", ca],
        ["front-proxy-ca", frontProxy],
        ...(externalEtcd ?? [["etcd-ca", etcdCa] as [string, string]]),
        ["admin", adminCert],
      ]),
    );
}

function expiryByName(certificates: [string, string][]): Record<string, string> {
  const expiry: Record<string, string> = {};
  for (const [name, pem] of certificates) {
    const at = certificateExpiry(pem);
    if (at) expiry[name] = at;
  }
  return expiry;
}

/**
 * kubeadm's certificates as `<machine>/<kubeadm's name>` (`cp-1/apiserver`). Several steps of a machine read the
 * same files (its upgrade, its renewal): the latest expiry is the file's now, as every renewal pushes it on (and a
 * refresh reads them all again).
 */
function readOnMachines(sources: ExpirySources): pulumi.Output<Record<string, string>> {
  const names = new Map(kubeadmCertificates(!sources.stack.etcd?.external).map((c) => [c.path, c.name]));
  const readings = sources.plan
    .filter((step) => step.certificates?.length)
    .map((step) =>
      (sources.steps.get(step.id) as MachineStep).certificateExpiry.apply((expiry) => ({
        machine: step.machine,
        expiry: expiry ?? {},
      })),
    );
  return pulumi.all(readings).apply((all) => {
    const out: Record<string, string> = {};
    for (const { machine, expiry } of all) {
      for (const [path, at] of Object.entries(expiry)) {
        const key = `${machine}/${names.get(path) ?? path}`;
        if (!out[key] || Date.parse(at) > Date.parse(out[key])) out[key] = at;
      }
    }
    return out;
  });
}

/** Every certificate's expiry (ISO 8601, UTC) by name, sorted by name. */
export function clusterCertificateExpiry(sources: ExpirySources): pulumi.Output<Record<string, string>> {
  return pulumi.all([madeByNodeforge(sources), readOnMachines(sources)]).apply(([own, read]) => {
    const all = { ...own, ...read };
    return Object.fromEntries(
      Object.keys(all)
        .sort()
        .map((name) => [name, all[name]!]),
    );
  });
}
