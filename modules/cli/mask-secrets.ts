/**
 * Masks the cluster's (throwaway) secrets in rendered text, for `nodeforge diff`: every secret value becomes
 * `<secret>`, every public one (a certificate, a hash, a public key) `<its name>`, so that a diff shows the lines
 * that changed around them and never a key or a token, and reads the same whatever secrets were generated.
 */
import { SECRET_NAMES, type ClusterSecretName, type ClusterSecrets } from "../plan";

/** The placeholder that stands for every secret value. */
export const SECRET_PLACEHOLDER = "<secret>";

/**
 * Values of the secrets that are public by nature, by their path in ClusterSecrets (`*`: any name). Every other
 * value is masked as a secret: a name added to ClusterSecrets later is hidden until it is listed here.
 */
const PUBLIC_PATHS = [
  "caCert",
  "frontProxyCaCert",
  "etcdCaCert",
  "serviceAccountPub",
  "caCertHash",
  "adminCert",
  "externalEtcdCaCert",
  "externalEtcdClientCert",
  "externalEtcdMembers.memberCerts.*",
  "externalEtcdMembers.memberCerts.*.cert",
  "vms.*.hostPublicKey",
  "vms.*.authorizedKey",
];

/** Values that are the stack's own (not made by the PKI): the cluster's name, the etcd members' addresses. */
const UNMASKED_PATHS = ["clusterName", "externalEtcdMembers.memberCerts.*.address"];

/** A PEM armor line (`-----BEGIN CERTIFICATE-----`): the same in every key, not worth masking alone. */
const ARMOR = /^-----(BEGIN|END) [A-Z0-9 ]+-----$/;

/** Lines of a multi-line value at least this long are masked on their own too (a value re-wrapped or re-indented). */
const MIN_LINE = 16;

function matches(patterns: readonly string[], path: readonly string[]): boolean {
  return patterns.some((pattern) => {
    const parts = pattern.split(".");
    return parts.length === path.length && parts.every((part, i) => part === "*" || part === path[i]);
  });
}

/** One value of the secrets with what stands for it. */
export interface MaskedValue {
  path: string[];
  value: string;
  secret: boolean;
  placeholder: string;
}

/** Every string in the secrets object, with what stands for it; secret unless its path is known to be public. */
export function maskedValues(secrets: ClusterSecrets): MaskedValue[] {
  const found: MaskedValue[] = [];
  const walk = (value: unknown, path: string[]): void => {
    if (typeof value === "string") {
      if (value.trim() === "" || matches(UNMASKED_PATHS, path)) return;
      const isPublic =
        matches(PUBLIC_PATHS, path) && !(path.length === 1 && SECRET_NAMES.has(path[0] as ClusterSecretName));
      found.push({
        path,
        value,
        secret: !isPublic,
        placeholder: isPublic ? `<${path.join(".")}>` : SECRET_PLACEHOLDER,
      });
    } else if (value && typeof value === "object") {
      for (const [key, inner] of Object.entries(value)) walk(inner, [...path, key]);
    }
  };
  walk(secrets, []);
  return found;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The forms a value may take in a file: as is, JSON-escaped, base64-encoded, re-indented line by line. */
function forms(value: string): { whole: RegExp[]; lines: string[] } {
  const core = value.trim();
  const literal = new Set([value, core, JSON.stringify(core).slice(1, -1), JSON.stringify(value).slice(1, -1)]);
  for (const text of [value, core]) literal.add(Buffer.from(text, "utf8").toString("base64"));
  const whole = [...literal]
    .filter((form) => form !== "")
    .sort((a, b) => b.length - a.length)
    .map((form) => new RegExp(escapeRegExp(form), "g"));
  const lines = core.split(/\r?\n/).map((line) => line.trim());
  if (lines.length > 1) {
    // The value as a YAML block or any indented text: its lines with any indentation between them.
    whole.push(new RegExp(lines.map(escapeRegExp).join("\\r?\\n[ \\t]*"), "g"));
  }
  return { whole, lines: lines.filter((line) => line.length >= MIN_LINE && !ARMOR.test(line)) };
}

/**
 * A function that masks every value of `secrets` in a text: whole values first (longest first, in each form they
 * may take), then any remaining long line of a multi-line value.
 */
export function secretMasker(secrets: ClusterSecrets): (text: string) => string {
  const values = maskedValues(secrets).sort((a, b) => b.value.length - a.value.length);
  const whole: [RegExp, string][] = [];
  const lines: [string, string][] = [];
  for (const masked of values) {
    const found = forms(masked.value);
    for (const pattern of found.whole) whole.push([pattern, masked.placeholder]);
    for (const line of found.lines) lines.push([line, masked.placeholder]);
  }
  lines.sort((a, b) => b[0].length - a[0].length);
  return (text) => {
    let out = text;
    for (const [pattern, placeholder] of whole) out = out.replace(pattern, placeholder);
    for (const [line, placeholder] of lines) out = out.split(line).join(placeholder);
    return out;
  };
}
