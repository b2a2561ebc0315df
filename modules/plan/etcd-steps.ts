/** An external etcd member (modules/etcd) as a planned step on its dedicated machine. */
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
import type { Pins } from "../pins";
import type { EtcdPkiMaterial } from "../pki";
import type { EtcdMachineSpec, StackSpec } from "../stack";
import type { ManagedFile } from "../steps";
import type { ClusterSecrets, PlannedFile, PlannedStep } from "./types";

/** What a member's files are made of, from the cluster's secrets. */
function material(secrets: ClusterSecrets): EtcdPkiMaterial {
  return {
    caCert: secrets.externalEtcdCaCert,
    clientCert: secrets.externalEtcdClientCert,
    clientKey: secrets.externalEtcdClientKey,
    ...secrets.externalEtcdMembers,
  };
}

/** The member's step: its certificates, keys, configuration and unit; install, start, wait until healthy. */
export function planEtcdMemberStep(
  stack: StackSpec,
  machine: EtcdMachineSpec,
  cluster: EtcdCluster,
  pins: Pins,
): PlannedStep {
  const options = { os: osProfile(machine.os), removePackages: stack.destroy.removePackages };
  const release = etcdRelease(stack, machine, pins);
  // The member's files render together: once for a set of secrets, not once for each file made of them.
  const renderedFor = new WeakMap<ClusterSecrets, ManagedFile[]>();
  const rendered = (s: ClusterSecrets): ManagedFile[] => {
    let files = renderedFor.get(s);
    if (!files) {
      files = etcdMemberFiles(machine.name, cluster, material(s));
      renderedFor.set(s, files);
    }
    return files;
  };
  const files: PlannedFile[] = ETCD_MEMBER_PATHS.map((path, index) => ({
    path,
    mode: isEtcdSecretFile(path) ? "0600" : "0644",
    owner: "root",
    group: "root",
    content: {
      fromSecrets: (s) => {
        const file = rendered(s)[index];
        if (file?.path !== path) throw new Error(`${machine.name}: ${ETCD_STEP}: unexpected member file ${path}`);
        return file.content;
      },
      ...(isEtcdSecretFile(path) ? {} : { public: true as const }),
    },
  }));
  return {
    id: `${machine.name}-${ETCD_STEP}`,
    step: ETCD_STEP,
    machine: machine.name,
    title: "Install the pinned etcd release and run this machine's member of the external etcd cluster",
    files,
    // The script names only a hash of the files (its restart stamp), never a key.
    script: { fromSecrets: (s) => etcdMemberScript(machine.name, cluster, material(s), release, options) },
    deleteScript: etcdMemberDeleteScript(machine.name, cluster, options),
    units: [ETCD_UNIT],
    triggers: [],
    after: [],
  };
}
