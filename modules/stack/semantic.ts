/** Checks a schema-valid stack file cannot express in JSON Schema: uniqueness, CIDRs, versions, roles. */
import { supportedKubernetesVersions, type Pins } from "../pins";
import { parseHostKey } from "../remote/host-key";
import { cidrContains, cidrsOverlap, formatAddress, parseAddress, parseCidr, type Cidr } from "./cidr";
import { controlPlaneIssues } from "./control-plane";
import { formatPath } from "./errors";
import type { StackSpec } from "./types";
import { isControlPlane } from "./types";

export interface SemanticIssue {
  segments: (string | number)[];
  message: string;
}

/** Label prefixes a kubelet may set on its own Node under the NodeRestriction admission plugin. */
const KUBELET_SETTABLE_LABELS = new Set([
  "kubernetes.io/hostname",
  "kubernetes.io/arch",
  "kubernetes.io/os",
  "beta.kubernetes.io/instance-type",
  "node.kubernetes.io/instance-type",
  "failure-domain.beta.kubernetes.io/region",
  "failure-domain.beta.kubernetes.io/zone",
  "topology.kubernetes.io/region",
  "topology.kubernetes.io/zone",
]);
const KUBELET_SETTABLE_PREFIXES = ["kubelet.kubernetes.io/", "node.kubernetes.io/"];

function labelSettableByKubelet(key: string): boolean {
  const slash = key.indexOf("/");
  if (slash < 0) return true;
  const prefix = key.slice(0, slash);
  const reserved = ["kubernetes.io", "k8s.io"].some((d) => prefix === d || prefix.endsWith(`.${d}`));
  return !reserved || KUBELET_SETTABLE_LABELS.has(key) || KUBELET_SETTABLE_PREFIXES.some((p) => key.startsWith(p));
}

const PREFIX_LIMITS = {
  service: { 4: [12, 28], 6: [108, 124] },
  pod: { 4: [8, 24], 6: [48, 64] },
} as const;

function checkCidr(
  issues: SemanticIssue[],
  field: "podCIDR" | "serviceCIDR",
  text: string,
  limits: { 4: readonly [number, number]; 6: readonly [number, number] },
): Cidr | undefined {
  const cidr = parseCidr(text);
  if (typeof cidr === "string") {
    issues.push({ segments: ["cluster", field], message: `'${text}' ${cidr}` });
    return undefined;
  }
  const [min, max] = limits[cidr.family];
  if (cidr.prefix < min || cidr.prefix > max) {
    issues.push({
      segments: ["cluster", field],
      message: `'${text}' has prefix /${cidr.prefix}; IPv${cidr.family} ${field} prefixes must be between /${min} and /${max}`,
    });
  }
  return cidr;
}

/** The host key's problem as a sentence, or undefined when it parses as a usable SSH public key. */
function hostKeyProblem(line: string): string | undefined {
  try {
    parseHostKey(line);
    return undefined;
  } catch (error) {
    return `is not a usable SSH host key: ${(error as Error).message}`;
  }
}

/** Whether the machine declared at `at` in the raw document has its own `ssh.bastion` (else it inherits the stack's). */
function ownsBastion(raw: unknown, at: (string | number)[]): boolean {
  if (raw === undefined) return true;
  const declared = at.reduce<unknown>(
    (node, key) => (node && typeof node === "object" ? (node as Record<string, unknown>)[key] : undefined),
    raw,
  ) as { ssh?: { bastion?: unknown } } | undefined;
  return declared?.ssh?.bastion !== undefined;
}

/** Canonical `host:port` so that two spellings of one IP address compare equal. */
function endpointOf(address: string, port: number): string {
  const ip = parseAddress(address);
  return `${ip ? formatAddress(ip.family, ip.value) : address.toLowerCase()}:${port}`;
}

/**
 * `raw` is the parsed document the spec came from; with it, a problem in the stack-wide bastion is reported once
 * at `ssh.bastion` rather than at every machine that inherits it.
 */
export function semanticIssues(spec: StackSpec, pins: Pins, raw?: unknown): SemanticIssue[] {
  const issues: SemanticIssue[] = [];
  const reported = new Set<string>();
  const report = (issue: SemanticIssue): void => {
    const key = JSON.stringify(issue);
    if (reported.has(key)) return;
    reported.add(key);
    issues.push(issue);
  };
  const { cluster } = spec;

  const versions = supportedKubernetesVersions(pins);
  if (!versions.includes(cluster.kubernetesVersion)) {
    issues.push({
      segments: ["cluster", "kubernetesVersion"],
      message: `'${cluster.kubernetesVersion}' is not supported; supported versions: ${versions.join(", ")}`,
    });
  }
  if (cluster.containerRuntime === "cri-o") {
    issues.push({
      segments: ["cluster", "containerRuntime"],
      message: "'cri-o' is reserved for a later release; use containerd",
    });
  }

  const pod = checkCidr(issues, "podCIDR", cluster.podCIDR, PREFIX_LIMITS.pod);
  const service = checkCidr(issues, "serviceCIDR", cluster.serviceCIDR, PREFIX_LIMITS.service);
  if (pod && service) {
    if (pod.family !== service.family) {
      issues.push({
        segments: ["cluster", "serviceCIDR"],
        message: `is IPv${service.family} but podCIDR is IPv${pod.family}; dual-stack is not supported`,
      });
    } else if (cidrsOverlap(pod, service)) {
      issues.push({
        segments: ["cluster", "serviceCIDR"],
        message: `'${service.text}' overlaps podCIDR '${pod.text}'`,
      });
    }
  }

  // Machines, VMs and hypervisors share one namespace of names and of SSH endpoints.
  const names = new Map<string, string>();
  const endpoints = new Map<string, string>();
  for (const [h, hypervisor] of spec.hypervisors.entries()) {
    const at = formatPath(["hypervisors", h]);
    const sameName = names.get(hypervisor.name);
    if (sameName !== undefined) {
      issues.push({
        segments: ["hypervisors", h, "name"],
        message: `'${hypervisor.name}' is already the name of ${sameName}`,
      });
    } else names.set(hypervisor.name, at);
    const endpoint = endpointOf(hypervisor.address, hypervisor.ssh.port);
    const sameEndpoint = endpoints.get(endpoint);
    if (sameEndpoint !== undefined) {
      issues.push({
        segments: ["hypervisors", h, "address"],
        message: `'${hypervisor.address}' (SSH port ${hypervisor.ssh.port}) is already the address of ${sameEndpoint}`,
      });
    } else endpoints.set(endpoint, at);
  }
  // A VM's address is its own: no other machine, VM or hypervisor may have it on another SSH port either (the same
  // port is reported below as the same SSH endpoint).
  const hostsByIp = new Map<string, { at: string; port: number }>();
  for (const [h, hypervisor] of spec.hypervisors.entries()) {
    hostsByIp.set(endpointOf(hypervisor.address, 0), { at: formatPath(["hypervisors", h]), port: hypervisor.ssh.port });
  }
  spec.machines.forEach((machine, index) => {
    const at = machine.vm?.at ?? ["machines", index];
    const key = endpointOf(machine.address, 0);
    const other = hostsByIp.get(key);
    if (machine.vm && other && other.port !== machine.ssh.port) {
      issues.push({
        segments: [...at, "address"],
        message: `'${machine.address}' is already the address of ${other.at}`,
      });
    }
    if (!other) hostsByIp.set(key, { at: formatPath(at), port: machine.ssh.port });
  });
  spec.machines.forEach((machine, index) => {
    // Where the machine is declared: machines[i], or hypervisors[h].vms[v] for a VM.
    const at = machine.vm?.at ?? ["machines", index];
    const sameName = names.get(machine.name);
    if (sameName !== undefined) {
      issues.push({
        segments: [...at, "name"],
        message: `'${machine.name}' is already the name of ${sameName}`,
      });
    } else names.set(machine.name, formatPath(at));

    const ip = parseAddress(machine.address);
    // Compare IP addresses in canonical form, so fd00::1 and fd00:0::1 are one endpoint.
    const host = ip ? formatAddress(ip.family, ip.value) : machine.address.toLowerCase();
    const endpoint = `${host}:${machine.ssh.port}`;
    const sameEndpoint = endpoints.get(endpoint);
    if (sameEndpoint !== undefined) {
      issues.push({
        segments: [...at, "address"],
        message: `'${machine.address}' (SSH port ${machine.ssh.port}) is already the address of ${sameEndpoint}`,
      });
    } else endpoints.set(endpoint, formatPath(at));

    if (/^[0-9.]+$/.test(machine.address) && !ip) {
      issues.push({
        segments: [...at, "address"],
        message: `'${machine.address}' is not a valid IPv4 address`,
      });
    }
    if (machine.address.includes(":") && !ip) {
      const message = `'${machine.address}' is not a valid IPv6 address`;
      issues.push({ segments: [...at, "address"], message });
    }
    for (const [label, cidr] of [
      ["podCIDR", pod],
      ["serviceCIDR", service],
    ] as const) {
      if (ip && cidr && cidrContains(cidr, ip.family, ip.value)) {
        issues.push({
          segments: [...at, "address"],
          message: `'${machine.address}' lies inside the cluster ${label} '${cidr.text}'`,
        });
      }
    }

    const keyProblem = machine.hostKey === "" ? undefined : hostKeyProblem(machine.hostKey);
    if (keyProblem) issues.push({ segments: [...at, "hostKey"], message: keyProblem });
    const { bastion } = machine.ssh;
    if (bastion) {
      const base = ownsBastion(raw, at) ? [...at, "ssh", "bastion"] : ["ssh", "bastion"];
      const bastionKeyProblem = hostKeyProblem(bastion.hostKey);
      if (bastionKeyProblem) report({ segments: [...base, "hostKey"], message: bastionKeyProblem });
      if (/^[0-9.]+$/.test(bastion.address) && !parseAddress(bastion.address)) {
        report({ segments: [...base, "address"], message: `'${bastion.address}' is not a valid IPv4 address` });
      }
      if (endpointOf(bastion.address, bastion.port) === endpointOf(machine.address, machine.ssh.port)) {
        issues.push({
          segments: [...at, "address"],
          message: `is the machine's own bastion (${bastion.address} port ${bastion.port}); a machine cannot jump through itself`,
        });
      }
    }

    if (machine.ssh.user !== "root" && !machine.ssh.sudo) {
      issues.push({
        segments: [...at, "ssh", "sudo"],
        message: `user '${machine.ssh.user}' is not root, so sudo must be true (set it under ssh or the machine's ssh)`,
      });
    }
    if (machine.ssh.sudoPasswordConfig && !machine.ssh.sudo) {
      issues.push({
        segments: [...at, "ssh", "sudoPasswordConfig"],
        message: "is set but sudo is false",
      });
    }

    for (const key of Object.keys(machine.labels)) {
      if (!labelSettableByKubelet(key)) {
        issues.push({
          segments: [...at, "labels", key],
          message:
            "is in a kubernetes.io/k8s.io namespace the kubelet may not set on its own node (NodeRestriction); use another prefix",
        });
      }
    }
    const taintKeys = new Map<string, number>();
    machine.taints.forEach((taint, t) => {
      const id = `${taint.key}:${taint.effect}`;
      const previous = taintKeys.get(id);
      if (previous !== undefined) {
        issues.push({
          segments: [...at, "taints", t],
          message: `duplicates taints[${previous}] (same key '${taint.key}' and effect ${taint.effect})`,
        });
      } else taintKeys.set(id, t);
    });
  });

  hypervisorIssues(spec, issues);
  if (spec.etcd) etcdIssues(spec, issues);
  cniIssues(spec, pins, issues);

  if (!spec.machines.some(isControlPlane)) {
    issues.push({
      segments: ["machines"],
      message: "needs at least one machine with role control-plane or control-plane+worker",
    });
  }
  issues.push(...controlPlaneIssues(spec));
  return issues;
}

/**
 * A CNI plugin needs a checksum (the stack's or a pin's: nodeforge applies no manifest it cannot verify) and an IPv4
 * pod network (the manifests nodeforge adapts configure IPv4 only).
 */
function cniIssues(spec: StackSpec, pins: Pins, issues: SemanticIssue[]): void {
  const { plugin, manifestUrl, sha256 } = spec.cni;
  if (plugin === "none") {
    for (const [key, value] of Object.entries({ manifestUrl, sha256 })) {
      if (value !== undefined) issues.push({ segments: ["cni", key], message: "has no use with plugin none" });
    }
    return;
  }
  const release = pins.cni[plugin];
  if (!sha256 && !release.sha256) {
    issues.push({
      segments: ["cni", "sha256"],
      message:
        `is required: nodeforge has no verified sha256 for ${plugin} ${release.version} ` +
        `(${manifestUrl ?? release.manifestUrl}); run \`nodeforge cni-pin ${spec.file}\` where that URL is ` +
        "reachable, review the manifest and add the sha256 it prints",
    });
  }
  const pod = parseCidr(spec.cluster.podCIDR);
  if (typeof pod !== "string" && pod.family === 6) {
    issues.push({
      segments: ["cluster", "podCIDR"],
      message: `is IPv6: nodeforge sets up ${plugin} for an IPv4 pod network only; use cni: none and install it yourself`,
    });
  }
}

/** Etcd members per cluster that etcd's docs recommend at most (more only slow writes down). */
const MAX_ETCD_MEMBERS = 7;

/**
 * External etcd: an odd number of members (an even one tolerates no more failures than one fewer and risks a split
 * vote), names and addresses unique among the members and apart from the Kubernetes machines', usable host keys.
 */
function etcdIssues(spec: StackSpec, issues: SemanticIssue[]): void {
  const members = spec.etcd?.external.machines ?? [];
  const base = ["etcd", "external", "machines"];
  if (members.length > MAX_ETCD_MEMBERS) {
    issues.push({
      segments: base,
      message: `has ${members.length} members; at most ${MAX_ETCD_MEMBERS} (every write waits for a majority of them)`,
    });
  } else if (members.length % 2 === 0) {
    issues.push({
      segments: base,
      message:
        `has ${members.length} members; an etcd cluster needs an odd number (1, 3, 5 or ${MAX_ETCD_MEMBERS}): ` +
        `${members.length} members tolerate no more failures than ${members.length - 1}`,
    });
  }
  const declared = (m: StackSpec["machines"][number], i: number) => formatPath(m.vm?.at ?? ["machines", i]);
  const machineNames = new Map([
    ...spec.machines.map((m, i): [string, string] => [m.name, declared(m, i)]),
    ...spec.hypervisors.map((hv, h): [string, string] => [hv.name, formatPath(["hypervisors", h])]),
  ]);
  const machineAddresses = new Map(spec.machines.map((m, i) => [endpointOf(m.address, 0), declared(m, i)]));
  const names = new Map<string, number>();
  const addresses = new Map<string, number>();
  members.forEach((member, index) => {
    const at = [...base, index];
    const sameName = names.get(member.name);
    const sameMachineName = machineNames.get(member.name);
    if (sameName !== undefined) {
      issues.push({
        segments: [...at, "name"],
        message: `'${member.name}' is already the name of etcd.external.machines[${sameName}]`,
      });
    } else if (sameMachineName !== undefined) {
      issues.push({
        segments: [...at, "name"],
        message: `'${member.name}' is already the name of ${sameMachineName}; etcd members need machines of their own`,
      });
    }
    if (sameName === undefined) names.set(member.name, index);

    const address = endpointOf(member.address, 0);
    const sameAddress = addresses.get(address);
    const sameMachineAddress = machineAddresses.get(address);
    if (sameAddress !== undefined) {
      issues.push({
        segments: [...at, "address"],
        message: `'${member.address}' is already the address of etcd.external.machines[${sameAddress}]`,
      });
    } else if (sameMachineAddress !== undefined) {
      issues.push({
        segments: [...at, "address"],
        message: `'${member.address}' is already the address of ${sameMachineAddress}; etcd members need machines of their own`,
      });
    }
    if (sameAddress === undefined) addresses.set(address, index);

    const keyProblem = member.hostKey === "" ? undefined : hostKeyProblem(member.hostKey);
    if (keyProblem) issues.push({ segments: [...at, "hostKey"], message: keyProblem });
    if (member.ssh.user !== "root" && !member.ssh.sudo) {
      issues.push({
        segments: [...at, "ssh", "sudo"],
        message: `user '${member.ssh.user}' is not root, so sudo must be true (set it under ssh or the machine's ssh)`,
      });
    }
  });
}

/**
 * Hypervisors: usable host keys, sudo for a user that is not root, and VMs that fit: their cpus and memory within
 * the hypervisor's declared capacity, their architecture the hypervisor's (nodeforge does not emulate another).
 */
function hypervisorIssues(spec: StackSpec, issues: SemanticIssue[]): void {
  spec.hypervisors.forEach((hypervisor, h) => {
    const at = ["hypervisors", h];
    const keyProblem = hypervisor.hostKey === "" ? undefined : hostKeyProblem(hypervisor.hostKey);
    if (keyProblem) issues.push({ segments: [...at, "hostKey"], message: keyProblem });
    if (hypervisor.ssh.user !== "root" && !hypervisor.ssh.sudo) {
      issues.push({
        segments: [...at, "ssh", "sudo"],
        message: `user '${hypervisor.ssh.user}' is not root, so sudo must be true (set it under ssh or the hypervisor's ssh)`,
      });
    }
    if (hypervisor.os === "rocky-9") {
      issues.push({
        segments: [...at, "os"],
        message:
          "rocky-9 hypervisors are not supported yet: nodeforge installs libvirt and qemu by Debian's package names",
      });
    }
    if (`${hypervisor.storagePool.path}/`.startsWith("/var/lib/nodeforge/")) {
      issues.push({
        segments: [...at, "storagePool", "path"],
        message:
          "is inside nodeforge's state directory /var/lib/nodeforge, which is root's alone: qemu could not open the disks",
      });
    }
    const { image } = hypervisor;
    if ((image.url === undefined) === (image.path === undefined)) {
      const message = image.url
        ? "has both url and path; name one"
        : "needs url (to download it) or path (on the hypervisor)";
      issues.push({ segments: [...at, "image"], message });
    }
    // By where they are declared: two hypervisors of one name (reported above) keep their own VMs apart.
    const vms = spec.machines.filter((m) => m.vm?.at[1] === h);
    const cpus = vms.reduce((sum, vm) => sum + vm.vm!.cpus, 0);
    const memory = vms.reduce((sum, vm) => sum + vm.vm!.memoryMiB, 0);
    if (cpus > hypervisor.capacity.cpus) {
      issues.push({
        segments: [...at, "vms"],
        message: `ask for ${cpus} cpus together; the hypervisor's capacity.cpus is ${hypervisor.capacity.cpus}`,
      });
    }
    if (memory > hypervisor.capacity.memoryMiB) {
      issues.push({
        segments: [...at, "vms"],
        message: `ask for ${memory} MiB of memory together; the hypervisor's capacity.memoryMiB is ${hypervisor.capacity.memoryMiB}`,
      });
    }
    for (const vm of vms) {
      if (vm.ssh.port !== 22) {
        issues.push({
          segments: [...vm.vm!.at, "ssh", "port"],
          message: `is ${vm.ssh.port}, but a VM's sshd listens on 22 (set ssh: { port: 22 } on the VM)`,
        });
      }
      if (vm.arch !== hypervisor.arch) {
        issues.push({
          segments: [...vm.vm!.at, "arch"],
          message: `is ${vm.arch}, but hypervisor ${hypervisor.name} is ${hypervisor.arch} (VMs run the hypervisor's architecture)`,
        });
      }
    }
  });
}
