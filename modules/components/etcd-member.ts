/**
 * One member of the external etcd cluster (stack `etcd.external.machines`) on its dedicated machine: the member's
 * files (certificates and keys from EtcdPki, etcd's configuration, the unit) as RemoteFile resources, one
 * RemoteScript running the member script (install, start, wait until healthy), and a UnitState for
 * nodeforge-etcd.service. The machine is reached like a Node's; it is not a Kubernetes node.
 */
import * as pulumi from "@pulumi/pulumi";
import {
  ETCD_MEMBER_PATHS,
  ETCD_STEP,
  ETCD_UNIT,
  etcdMemberDeleteScript,
  etcdMemberFiles,
  etcdMemberScript,
  etcdRelease,
  isEtcdSecretFile,
  type EtcdCluster,
} from "../etcd";
import { osProfile } from "../os";
import type { EtcdPki, EtcdPkiMaterial } from "../pki";
import { UnitState, type RemoteScript } from "../remote";
import type { EtcdMachineSpec, StackSpec } from "../stack/types";
import { machineAccess, type MachineAccess, type SecretLookup } from "./connection";
import { filesTrigger, remoteStep, type StepFile } from "./remote-step";

export interface EtcdMemberArgs {
  stack: StackSpec;
  machine: EtcdMachineSpec;
  /** The whole external etcd cluster (etcdClusterOf(stack)). */
  cluster: EtcdCluster;
  pki: EtcdPki;
  secret: SecretLookup;
}

/** The PKI material of the member's files, from the EtcdPki outputs (keys included: treat it as a secret). */
function pkiMaterial(pki: EtcdPki): pulumi.Output<EtcdPkiMaterial> {
  return pulumi
    .all([pki.caCert, pki.clientCert, pki.clientKey, pki.memberCerts, pki.memberKeys])
    .apply(([caCert, clientCert, clientKey, memberCerts, memberKeys]) => ({
      caCert,
      clientCert,
      clientKey,
      memberCerts,
      memberKeys,
    }));
}

/** Keys are root's alone; certificates, configuration and unit are world-readable. */
function modeOf(path: string): string {
  return isEtcdSecretFile(path) ? "0600" : "0644";
}

export class EtcdMember extends pulumi.ComponentResource {
  /** The member step's script: done means the member runs and answered a health check. */
  readonly ready: RemoteScript;
  readonly machineName: string;
  readonly access: MachineAccess;

  constructor(name: string, args: EtcdMemberArgs, opts?: pulumi.ComponentResourceOptions) {
    super("nodeforge:etcd:EtcdMember", name, {}, opts);
    const { machine, cluster } = args;
    const access = machineAccess(machine, args.secret);
    const options = { os: osProfile(machine.os), removePackages: args.stack.destroy.removePackages };
    const material = pkiMaterial(args.pki);
    const release = etcdRelease(args.stack, machine);
    const rendered = material.apply((pki) => {
      const files = etcdMemberFiles(machine.name, cluster, pki);
      // The RemoteFile resources exist before the files are rendered: their paths and modes must match.
      const layout = files.map((f) => `${f.path} ${f.mode}`);
      const expected = ETCD_MEMBER_PATHS.map((path) => `${path} ${modeOf(path)}`);
      if (JSON.stringify(layout) !== JSON.stringify(expected)) {
        throw new Error(`${machine.name}: ${ETCD_STEP}: unexpected member files ${layout.join(", ")}`);
      }
      return files;
    });
    const files: StepFile[] = ETCD_MEMBER_PATHS.map((path, index) => {
      const content = rendered.apply((all) => (all[index] as { content: string }).content);
      return isEtcdSecretFile(path)
        ? { path, content: pulumi.secret(content), mode: modeOf(path), owner: "root", group: "root", secret: true }
        : { path, content, mode: modeOf(path), owner: "root", group: "root" };
    });
    // The script carries only a hash of the files (its restart stamp), never a key: not a secret itself.
    const script = pulumi.unsecret(
      material.apply((pki) => etcdMemberScript(machine.name, cluster, pki, release, options)),
    );
    const stepName = `${machine.name}-${ETCD_STEP}`;
    const step = remoteStep(this, {
      machine: machine.name,
      step: ETCD_STEP,
      access,
      files,
      script,
      deleteScript: etcdMemberDeleteScript(machine.name, cluster, options),
      triggers: [filesTrigger(files)],
      dependsOn: [],
    });
    new UnitState(
      `${stepName}-unit-${ETCD_UNIT.name}`,
      { target: access.target, step: ETCD_STEP, unit: ETCD_UNIT.name, enabled: true, active: true },
      { parent: this, dependsOn: [step] },
    );
    this.ready = step;
    this.machineName = machine.name;
    this.access = access;
    this.registerOutputs({ machineName: this.machineName });
  }
}
