/**
 * The control-plane settings of a stack: endpoint parsing, version comparison, and the semantic checks for
 * controlPlaneEndpoint, controlPlaneLoadBalancer, certificateSANs and kubeProxy.mode (called from semantic.ts).
 */
import { cidrContains, formatAddress, parseAddress, parseCidr } from "./cidr";
import type { SemanticIssue } from "./semantic";
import { isControlPlane, type Endpoint, type StackSpec } from "./types";

/** The API server's port when controlPlaneEndpoint names none (kubeadm's default bind port). */
export const API_SERVER_PORT = 6443;

/** Parses `host[:port]` (IPv6 in brackets); returns the reason when it is not one, worded to follow the text. */
export function parseEndpoint(text: string): Endpoint | string {
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
  if (bracketed) {
    host = bracketed[1] ?? "";
    portText = bracketed[2];
    if (parseAddress(host)?.family !== 6) return `has '[${host}]', which is not an IPv6 address`;
  } else {
    const colons = text.split(":").length - 1;
    if (colons > 1) return "has an IPv6 address without brackets; write it as [address]:port";
    [host = "", portText] = text.split(":");
    if (/^[0-9.]+$/.test(host) && !parseAddress(host)) return `has '${host}', which is not a valid IPv4 address`;
  }
  let port = API_SERVER_PORT;
  if (portText !== undefined) {
    port = Number(portText);
    if (!/^[0-9]{1,5}$/.test(portText) || port < 1 || port > 65535) {
      return `has port '${portText}', which is out of range 1-65535`;
    }
  }
  const family = parseAddress(host)?.family;
  return family ? { host, port, family } : { host, port };
}

/** `host:port` with an IPv6 host in brackets, as URLs and kubeadm want it. */
export function formatEndpoint(endpoint: Endpoint): string {
  return endpoint.family === 6 ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
}

/** Canonical form of a host, so that two spellings of one IP address compare equal. */
export function canonicalHost(host: string): string {
  const ip = parseAddress(host);
  return ip ? formatAddress(ip.family, ip.value) : host.toLowerCase();
}

/** Whether version `a` (`1.36.4`, an optional leading `v`) is at least `b` (`1.33`), numerically per component. */
export function versionAtLeast(a: string, b: string): boolean {
  const parts = (v: string) => v.replace(/^v/, "").split(".").map(Number);
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const [p, q] = [x[i] ?? 0, y[i] ?? 0];
    if (Number.isNaN(p) || Number.isNaN(q)) return false;
    if (p !== q) return p > q;
  }
  return true;
}

/** The first Kubernetes version whose kube-proxy has the nftables mode as GA. */
export const NFTABLES_MIN_VERSION = "1.33";

export function controlPlaneIssues(spec: StackSpec): SemanticIssue[] {
  const issues: SemanticIssue[] = [];
  const { cluster } = spec;
  const controlPlanes = spec.machines.filter(isControlPlane);
  const names = controlPlanes.map((m) => m.name).join(", ");

  if (controlPlanes.length > 1 && cluster.controlPlaneEndpoint === undefined) {
    issues.push({
      segments: ["cluster", "controlPlaneEndpoint"],
      message: `is required with ${controlPlanes.length} control-plane machines (${names}): set it to a load balancer or kube-vip address that reaches every API server`,
    });
  }
  if (controlPlanes.length > 1 && controlPlanes.length % 2 === 0) {
    issues.push({
      segments: ["machines"],
      message: `has ${controlPlanes.length} control-plane machines (${names}); stacked etcd needs an odd number (1, 3, 5, ...) to keep a quorum when one fails`,
    });
  }

  let endpoint: Endpoint | undefined;
  if (cluster.controlPlaneEndpoint !== undefined) {
    const parsed = parseEndpoint(cluster.controlPlaneEndpoint);
    if (typeof parsed === "string") {
      issues.push({
        segments: ["cluster", "controlPlaneEndpoint"],
        message: `'${cluster.controlPlaneEndpoint}' ${parsed}`,
      });
    } else endpoint = parsed;
  }

  const lb = cluster.controlPlaneLoadBalancer;
  if (lb) {
    const at = (...rest: string[]) => ["cluster", "controlPlaneLoadBalancer", ...rest];
    if (cluster.controlPlaneEndpoint === undefined && controlPlanes.length <= 1) {
      issues.push({
        segments: ["cluster", "controlPlaneEndpoint"],
        message: `is required with controlPlaneLoadBalancer: set it to the load balancer's address ('${lb.address}')`,
      });
    }
    if (lb.type === "external" && lb.interface !== undefined) {
      issues.push({ segments: at("interface"), message: "applies only to type kube-vip" });
    }
    const ip = parseAddress(lb.address);
    if (/^[0-9.]+$/.test(lb.address) && !ip) {
      issues.push({ segments: at("address"), message: `'${lb.address}' is not a valid IPv4 address` });
    } else if (lb.type === "kube-vip") {
      if (!ip) {
        issues.push({
          segments: at("address"),
          message: `'${lb.address}' is not an IP address; kube-vip announces a virtual IP address`,
        });
      } else {
        const vip = formatAddress(ip.family, ip.value);
        if (endpoint && canonicalHost(endpoint.host) !== vip) {
          issues.push({
            segments: ["cluster", "controlPlaneEndpoint"],
            message: `'${cluster.controlPlaneEndpoint}' must have the kube-vip address ${lb.address} as its host`,
          });
        }
        if (endpoint && endpoint.port !== API_SERVER_PORT) {
          issues.push({
            segments: ["cluster", "controlPlaneEndpoint"],
            message: `'${cluster.controlPlaneEndpoint}' must use port ${API_SERVER_PORT} with kube-vip (the API servers' port)`,
          });
        }
        const owner = spec.machines.find((m) => canonicalHost(m.address) === vip);
        if (owner) {
          issues.push({
            segments: at("address"),
            message: `'${lb.address}' is the address of machine ${owner.name}; the virtual IP must be an unused address`,
          });
        }
        for (const field of ["podCIDR", "serviceCIDR"] as const) {
          const cidr = parseCidr(cluster[field]);
          if (typeof cidr !== "string" && cidrContains(cidr, ip.family, ip.value)) {
            issues.push({
              segments: at("address"),
              message: `'${lb.address}' lies inside the cluster ${field} '${cidr.text}'`,
            });
          }
        }
      }
    }
  }

  (cluster.certificateSANs ?? []).forEach((san, i) => {
    if ((/^[0-9.]+$/.test(san) || san.includes(":")) && !parseAddress(san)) {
      issues.push({
        segments: ["cluster", "certificateSANs", i],
        message: `'${san}' is not a valid IP address`,
      });
    }
  });

  if (spec.kubeProxy.mode === "nftables" && !versionAtLeast(cluster.kubernetesVersion, NFTABLES_MIN_VERSION)) {
    issues.push({
      segments: ["kubeProxy", "mode"],
      message: `'nftables' needs Kubernetes ${NFTABLES_MIN_VERSION} or later; cluster.kubernetesVersion is '${cluster.kubernetesVersion}' (use iptables or ipvs)`,
    });
  }
  return issues;
}
