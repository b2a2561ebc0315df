/**
 * Stack file -> StackSpec: parse YAML (keeping positions), validate against the schema, apply defaults,
 * run the semantic checks, compute derived values. Pure: no Pulumi, no network.
 */
import { readFileSync } from "node:fs";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from "yaml";
import { DEFAULT_PINS, type Pins } from "../pins";
import { nthAddress, parseAddress, parseCidr } from "./cidr";
import { API_SERVER_PORT, parseEndpoint } from "./control-plane";
import {
  ARTIFACT_DEFAULTS,
  CONTAINERD_DEFAULTS,
  BASTION_DEFAULTS,
  CLUSTER_DEFAULTS,
  CNI_DEFAULTS,
  DESTROY_DEFAULTS,
  UPGRADE_DEFAULTS,
  CERTIFICATE_DEFAULTS,
  KUBE_PROXY_DEFAULTS,
  HYPERVISOR_DEFAULTS,
  IMAGE_DEFAULTS,
  KUBELET_DEFAULTS,
  MACHINE_DEFAULTS,
  SSH_DEFAULTS,
  STORAGE_POOL_DEFAULTS,
  VM_DEFAULTS,
} from "./defaults";
import { formatPath, StackValidationError, type StackIssue } from "./errors";
import { schemaIssues } from "./schema";
import { semanticIssues } from "./semantic";
import {
  isControlPlane,
  type Arch,
  type BastionSettings,
  type DerivedValues,
  type Endpoint,
  type EtcdMachineSpec,
  type HypervisorSpec,
  type MachineSpec,
  type VmSettings,
  type SshSettings,
  type StackSpec,
} from "./types";

/* The raw shapes below are what the schema guarantees once validation passed. */
type RawBastion = Partial<BastionSettings> & { address: string; hostKey: string };
type RawSsh = Partial<Omit<SshSettings, "bastion">> & { bastion?: RawBastion };
interface RawMachine extends Omit<Partial<MachineSpec>, "ssh"> {
  ssh?: RawSsh;
}
type RawVm = Omit<RawMachine, "vm" | "hostKey"> &
  Partial<Omit<VmSettings, "hypervisor" | "at">> & { name: string; address: string };
interface RawHypervisor extends Omit<Partial<HypervisorSpec>, "ssh" | "vms" | "storagePool" | "image"> {
  name: string;
  address: string;
  ssh?: RawSsh;
  storagePool?: Partial<HypervisorSpec["storagePool"]>;
  image: Omit<HypervisorSpec["image"], "format"> & { format?: HypervisorSpec["image"]["format"] };
  vms: RawVm[];
}
interface RawStack {
  cluster: Partial<StackSpec["cluster"]> & { name: string; kubernetesVersion: string };
  kubelet?: Partial<StackSpec["kubelet"]>;
  kubeProxy?: Partial<StackSpec["kubeProxy"]>;
  /** `cni: flannel` is short for `cni: { plugin: flannel }`. */
  cni?: StackSpec["cni"]["plugin"] | Partial<StackSpec["cni"]>;
  containerd?: Partial<StackSpec["containerd"]>;
  artifacts?: Partial<StackSpec["artifacts"]>;
  destroy?: Partial<StackSpec["destroy"]>;
  upgrade?: Partial<StackSpec["upgrade"]>;
  certificates?: Partial<StackSpec["certificates"]>;
  etcd?: { external: { machines: (Omit<EtcdMachineSpec, "ssh" | "arch"> & { ssh?: RawSsh; arch?: Arch })[] } };
  ssh?: RawSsh;
  hypervisors?: RawHypervisor[];
  machines: RawMachine[];
}

function withoutUndefined<T extends object>(value: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(value ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function positionOf(
  doc: Document,
  counter: LineCounter,
  segments: readonly (string | number)[],
): { line?: number; column?: number } {
  // Walk as deep as the document goes, so a missing key points at its parent.
  let node: unknown = doc.contents;
  let found: Node | undefined = node as Node | undefined;
  for (const segment of segments) {
    if (isMap(node)) {
      const pair = node.items.find((item) => (item.key as { value?: unknown } | null)?.value === segment);
      if (!pair) break;
      // Point at a scalar value itself; for a collection or empty value, point at its key: the line that names
      // it, where an unknown property or a missing child property belongs (a block value starts a line later).
      found = (isScalar(pair.value) ? pair.value : pair.key) as Node;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === "number") {
      node = node.items[segment];
      if (!node) break;
      found = node as Node;
    } else break;
  }
  const offset = found?.range?.[0];
  if (offset === undefined) return {};
  const { line, col } = counter.linePos(offset);
  return { line, column: col };
}

/**
 * A machine's SSH settings: its own fields over the stack-wide ones, field by field. A bastion is one unit (a
 * machine's bastion replaces the stack's whole, never mixed with it); its user and key default to the machine's.
 */
function machineSsh(stackWide: RawSsh | undefined, own: RawSsh | undefined): SshSettings {
  const { bastion, ...merged } = { ...SSH_DEFAULTS, ...withoutUndefined(stackWide), ...withoutUndefined(own) };
  const ssh: SshSettings = merged;
  if (bastion) {
    ssh.bastion = {
      port: BASTION_DEFAULTS.port,
      user: ssh.user,
      privateKeyConfig: ssh.privateKeyConfig,
      ...withoutUndefined(bastion),
      address: bastion.address,
      hostKey: bastion.hostKey.trim(),
    };
  }
  return ssh;
}

/** `{ addressFamily }` for an IP address, nothing for a DNS name. */
function familyOf(address: string): { addressFamily?: 4 | 6 } {
  const family = parseAddress(address)?.family;
  return family ? { addressFamily: family } : {};
}

/**
 * The values computed once. A value that does not parse gets a harmless placeholder here: the semantic checks that
 * follow report it, and no spec with it is ever returned.
 */
function derivedValues(cluster: StackSpec["cluster"], machines: MachineSpec[]): DerivedValues {
  const service = parseCidr(cluster.serviceCIDR);
  const pod = parseCidr(cluster.podCIDR);
  const first = machines.find(isControlPlane);
  const written = cluster.controlPlaneEndpoint === undefined ? undefined : parseEndpoint(cluster.controlPlaneEndpoint);
  const apiEndpoint: Endpoint =
    typeof written === "object"
      ? written
      : {
          host: first?.address ?? "",
          port: API_SERVER_PORT,
          ...(first?.addressFamily ? { family: first.addressFamily } : {}),
        };
  const lb = cluster.controlPlaneLoadBalancer && parseAddress(cluster.controlPlaneLoadBalancer.address)?.family;
  return {
    clusterDnsIp: typeof service === "string" ? "" : nthAddress(service, 10),
    apiServerServiceIp: typeof service === "string" ? "" : nthAddress(service, 1),
    ipFamily: typeof pod === "string" ? 4 : pod.family,
    apiEndpoint,
    ...(lb ? { loadBalancerFamily: lb } : {}),
  };
}

/** A VM as a machine (its `vm` says where it runs and what it is given). */
function vmMachine(raw: RawStack, hypervisor: RawHypervisor, h: number, vm: RawVm, v: number): MachineSpec {
  return {
    name: vm.name,
    address: vm.address,
    ...familyOf(vm.address),
    role: vm.role as MachineSpec["role"],
    os: vm.os as MachineSpec["os"],
    arch: vm.arch ?? hypervisor.arch ?? HYPERVISOR_DEFAULTS.arch,
    // Generated by nodeforge (a Pulumi secret) and pinned from the VM's first boot: not in the stack file.
    hostKey: "",
    ssh: machineSsh(raw.ssh, vm.ssh),
    labels: vm.labels ?? {},
    taints: vm.taints ?? [],
    vm: {
      hypervisor: hypervisor.name,
      at: ["hypervisors", h, "vms", v],
      cpus: vm.cpus as number,
      memoryMiB: vm.memoryMiB as number,
      diskGiB: vm.diskGiB as number,
      prefixLength: vm.prefixLength ?? VM_DEFAULTS.prefixLength,
      ...(vm.gateway ? { gateway: vm.gateway } : {}),
      nameservers: vm.nameservers ?? [],
      ...(vm.aptSources ? { aptSources: vm.aptSources } : {}),
    },
  };
}

function hypervisorSpec(raw: RawStack, hypervisor: RawHypervisor): HypervisorSpec {
  return {
    name: hypervisor.name,
    address: hypervisor.address,
    hostKey: (hypervisor.hostKey ?? "").trim(),
    os: hypervisor.os ?? HYPERVISOR_DEFAULTS.os,
    arch: hypervisor.arch ?? HYPERVISOR_DEFAULTS.arch,
    ssh: machineSsh(raw.ssh, hypervisor.ssh),
    driver: hypervisor.driver ?? HYPERVISOR_DEFAULTS.driver,
    uri: hypervisor.uri ?? HYPERVISOR_DEFAULTS.uri,
    storagePool: { ...STORAGE_POOL_DEFAULTS, ...withoutUndefined(hypervisor.storagePool) },
    network: hypervisor.network as HypervisorSpec["network"],
    image: { ...IMAGE_DEFAULTS, ...hypervisor.image },
    capacity: hypervisor.capacity as HypervisorSpec["capacity"],
    vms: hypervisor.vms.map((vm) => vm.name),
  };
}

export function normalize(file: string, raw: RawStack): StackSpec {
  const hypervisors = raw.hypervisors ?? [];
  const vms = hypervisors.flatMap((hv, h) => hv.vms.map((vm, v) => vmMachine(raw, hv, h, vm, v)));
  const bare: MachineSpec[] = raw.machines.map((m) => ({
    name: m.name as string,
    address: m.address as string,
    ...familyOf(m.address as string),
    role: m.role as MachineSpec["role"],
    os: m.os as MachineSpec["os"],
    arch: m.arch ?? MACHINE_DEFAULTS.arch,
    // Empty only when the file was read with requireHostKeys: false (`nodeforge hostkeys` on new machines).
    hostKey: (m.hostKey ?? "").trim(),
    ssh: machineSsh(raw.ssh, m.ssh),
    labels: m.labels ?? {},
    taints: m.taints ?? [],
  }));
  const machines = [...bare, ...vms];
  const cluster: StackSpec["cluster"] = {
    ...CLUSTER_DEFAULTS,
    ...withoutUndefined(raw.cluster),
  } as StackSpec["cluster"];
  const derived = derivedValues(cluster, machines);
  return {
    file,
    cluster,
    kubelet: { ...KUBELET_DEFAULTS, ...withoutUndefined(raw.kubelet) },
    kubeProxy: { ...KUBE_PROXY_DEFAULTS, ...withoutUndefined(raw.kubeProxy) },
    cni: { ...CNI_DEFAULTS, ...withoutUndefined(typeof raw.cni === "string" ? { plugin: raw.cni } : raw.cni) },
    containerd: { ...CONTAINERD_DEFAULTS, ...withoutUndefined(raw.containerd) },
    artifacts: { ...ARTIFACT_DEFAULTS, ...withoutUndefined(raw.artifacts) },
    destroy: { ...DESTROY_DEFAULTS, ...withoutUndefined(raw.destroy) },
    upgrade: { ...UPGRADE_DEFAULTS, ...withoutUndefined(raw.upgrade) },
    certificates: { ...CERTIFICATE_DEFAULTS, ...withoutUndefined(raw.certificates) },
    ...(raw.etcd
      ? {
          etcd: {
            external: {
              machines: raw.etcd.external.machines.map((m) => ({
                name: m.name,
                address: m.address,
                os: m.os,
                arch: m.arch ?? MACHINE_DEFAULTS.arch,
                hostKey: (m.hostKey ?? "").trim(),
                ssh: machineSsh(raw.ssh, m.ssh),
              })),
            },
          },
        }
      : {}),
    hypervisors: hypervisors.map((hv) => hypervisorSpec(raw, hv)),
    machines,
    derived,
  };
}

/** How strictly to read a stack file. */
export interface ParseOptions {
  /**
   * Require every machine's `hostKey` (default true). `nodeforge hostkeys` reads with false, so that machines not
   * yet pinned can be scanned; their MachineSpec.hostKey is then "". Provisioning never reads that way.
   */
  requireHostKeys?: boolean;
  /**
   * Require a checksum for the CNI manifest (default true). `nodeforge cni-pin` reads with false, to download the
   * manifest and print the checksum the stack lacks. Provisioning never reads that way.
   */
  requireCniChecksum?: boolean;
}

const MISSING_HOST_KEY = /^(machines|hypervisors)\[[0-9]+\]\.hostKey$/;

/** The YAML document and its plain value; any way the text fails to be one is a StackValidationError. */
function readYaml(text: string, file: string): { doc: Document.Parsed; counter: LineCounter; data: unknown } {
  const counter = new LineCounter();
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  } catch (error) {
    throw yamlError(file, error);
  }
  if (doc.errors.length > 0) {
    throw new StackValidationError(
      doc.errors.map((e) => {
        const { line, col } = counter.linePos(e.pos[0]);
        return { file, path: "", message: `YAML syntax: ${e.message.split("\n")[0] ?? e.code}`, line, column: col };
      }),
    );
  }
  try {
    // Aliases resolve here: an alias to no anchor, or an alias bomb (yaml's maxAliasCount), throws.
    return { doc, counter, data: doc.toJS() };
  } catch (error) {
    throw yamlError(file, error);
  }
}

/** What the YAML library threw, as a stack file issue; nesting deep enough to overflow the stack says so. */
function yamlError(file: string, error: unknown): StackValidationError {
  const message =
    error instanceof RangeError ? "nested too deeply to read" : ((error as Error)?.message ?? String(error));
  return new StackValidationError([{ file, path: "", message: `YAML: ${message}` }]);
}

/** The path of the first value that contains itself (a YAML alias inside its own anchor), if any. */
function cyclePath(data: unknown): (string | number)[] | undefined {
  const open = new Set<unknown>();
  const visit = (value: unknown, path: (string | number)[]): (string | number)[] | undefined => {
    if (value === null || typeof value !== "object") return undefined;
    if (open.has(value)) return path;
    open.add(value);
    const entries: [string | number, unknown][] = Array.isArray(value)
      ? value.map((item, index) => [index, item])
      : Object.entries(value);
    for (const [key, item] of entries) {
      const found = visit(item, [...path, key]);
      if (found) return found;
    }
    open.delete(value);
    return undefined;
  };
  return visit(data, []);
}

/** Parses and validates stack file text. Throws StackValidationError listing every problem found. */
export function parseStack(
  text: string,
  file: string,
  pins: Pins = DEFAULT_PINS,
  options: ParseOptions = {},
): StackSpec {
  const { doc, counter, data } = readYaml(text, file);
  const locate = (segments: readonly (string | number)[]) => positionOf(doc, counter, segments);
  const cycle = cyclePath(data);
  if (cycle) {
    const message = "YAML: an alias refers to a node that contains it (a cycle)";
    throw new StackValidationError([{ file, path: formatPath(cycle), message, ...locate(cycle) }]);
  }

  const fromSchema = schemaIssues(file, data).filter(
    (issue) =>
      options.requireHostKeys !== false || !(issue.message === "is required" && MISSING_HOST_KEY.test(issue.path)),
  );
  if (fromSchema.length > 0) {
    throw new StackValidationError(fromSchema.map(({ segments, ...issue }) => ({ ...issue, ...locate(segments) })));
  }
  const spec = normalize(file, data as RawStack);
  const semantic: StackIssue[] = semanticIssues(spec, pins, data)
    .filter(
      ({ segments, message }) =>
        options.requireCniChecksum !== false ||
        !(formatPath(segments) === "cni.sha256" && message.startsWith("is required")),
    )
    .map(({ segments, message }) => ({
      file,
      path: formatPath(segments),
      message,
      ...locate(segments),
    }));
  if (semantic.length > 0) throw new StackValidationError(semantic);
  return spec;
}

export function loadStackFile(file: string, pins: Pins = DEFAULT_PINS, options: ParseOptions = {}): StackSpec {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new StackValidationError([{ file, path: "", message: `cannot read: ${(error as Error).message}` }]);
  }
  return parseStack(text, file, pins, options);
}
