/**
 * The pod network (stack `cni`): the plugin's upstream manifest, downloaded on the first control-plane machine
 * from its release URL or a mirror, refused unless its sha256 is the pinned one, adapted to the cluster and applied
 * with `kubectl apply --server-side`. nodeforge does not keep copies of these manifests: a new plugin release is a
 * pin change (version, URL, checksum), and an operator can review exactly what is applied against upstream.
 *
 * Adapting is kept to what the cluster cannot do without: flannel's net-conf.json names the pod network, which must
 * be cluster.podCIDR. Calico needs nothing: with CALICO_IPV4POOL_CIDR unset (as in its manifest) calico-node takes
 * the pool from kubeadm's ClusterConfiguration.networking.podSubnet, which nodeforge sets to cluster.podCIDR.
 */
import type { CniPlugin, Pins } from "../pins";
import type { StackSpec } from "../stack";
import { CNI_BIN_DIR, CNI_CONF_DIR } from "../steps";
import { NODEFORGE_KUBERNETES_DIR } from "./kubeadm";

/** Where the first control plane keeps the manifest it applied (what destroy deletes again). */
export const CNI_DIR = `${NODEFORGE_KUBERNETES_DIR}/cni`;

/** flannel's default pod network, in the net-conf.json of its release manifests. */
export const FLANNEL_DEFAULT_NETWORK = "10.244.0.0/16";

/** One literal text replacement in the downloaded manifest; the text must occur exactly once. */
export interface ManifestEdit {
  from: string;
  to: string;
}

/** The CNI plugin a stack installs, with everything the apply script needs. */
export interface ResolvedCni {
  plugin: CniPlugin;
  version: string;
  /** Where the machine downloads the manifest: the stack's mirror URL, else the release URL. */
  manifestUrl: string;
  sha256: string;
  /** The adapted manifest on the first control-plane machine. */
  manifestPath: string;
  edits: ManifestEdit[];
}

function flannelNetwork(cidr: string): string {
  return `"Network": "${cidr}"`;
}

/** The edits the apply script makes to `plugin`'s manifest for this stack (each text must occur exactly once). */
export function cniEdits(plugin: CniPlugin, stack: StackSpec): ManifestEdit[] {
  if (plugin === "calico") return [];
  // Even when the pod CIDR is flannel's default, the line must be found: it proves the manifest is laid out as
  // nodeforge expects before anything is applied.
  return [{ from: flannelNetwork(FLANNEL_DEFAULT_NETWORK), to: flannelNetwork(stack.cluster.podCIDR) }];
}

/**
 * The stack's CNI plugin, or undefined for `none`. Throws when no checksum is known: the semantic checks refuse such
 * a stack first, naming the file and `cni.sha256`, so this only guards programmatic callers.
 */
export function resolveCni(stack: StackSpec, pins: Pins): ResolvedCni | undefined {
  const { plugin } = stack.cni;
  if (plugin === "none") return undefined;
  const release = pins.cni[plugin];
  const sha256 = stack.cni.sha256 ?? release.sha256;
  if (!sha256) throw new Error(`${stack.file}: cni.sha256: is required for ${plugin} ${release.version}`);
  return {
    plugin,
    version: release.version,
    manifestUrl: stack.cni.manifestUrl ?? release.manifestUrl,
    sha256,
    manifestPath: `${CNI_DIR}/${plugin}.yaml`,
    edits: cniEdits(plugin, stack),
  };
}

/**
 * What a plugin leaves on every node, outside Kubernetes: removed when the node is reset. The plugins' manifests
 * mount the same CNI directories containerd is configured with (CNI_CONF_DIR, CNI_BIN_DIR).
 */
export interface CniLeftovers {
  /** Files and directories (removed recursively: all of them the plugin's own). */
  paths: string[];
  /** Network interfaces the plugin created. */
  links: string[];
}

const LEFTOVERS: Record<CniPlugin, CniLeftovers> = {
  flannel: {
    paths: [
      `${CNI_CONF_DIR}/10-flannel.conflist`,
      `${CNI_BIN_DIR}/flannel`,
      "/run/flannel",
      "/var/lib/cni/flannel",
      "/var/lib/cni/networks/cbr0",
    ],
    links: ["flannel.1", "cni0"],
  },
  calico: {
    paths: [
      `${CNI_CONF_DIR}/10-calico.conflist`,
      `${CNI_CONF_DIR}/calico-kubeconfig`,
      `${CNI_BIN_DIR}/calico`,
      `${CNI_BIN_DIR}/calico-ipam`,
      "/var/lib/calico",
      "/var/run/calico",
      "/var/log/calico",
      "/var/run/nodeagent",
    ],
    links: ["vxlan.calico", "vxlan-v6.calico"],
  },
};

/** The stack's plugin's node leftovers; nothing for `none` (nodeforge never removes what it did not install). */
export function cniLeftovers(stack: StackSpec): CniLeftovers {
  return stack.cni.plugin === "none" ? { paths: [], links: [] } : LEFTOVERS[stack.cni.plugin];
}
