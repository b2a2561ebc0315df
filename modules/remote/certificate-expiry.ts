/**
 * The certificate operation of a step's resource (MachineStep, machine-step.ts): when the certificates a step's
 * script makes or renews on a machine expire. kubeadm makes the control plane's certificates (a year) at init and
 * join and renews them at every upgrade and `kubeadm certs renew`; nodeforge holds none of them, so their expiry can
 * only be read where they are. Only certificates cross the connection: a kubeconfig's client certificate is cut out
 * of it on the machine (its key stays there), and a file's first whole certificate block only.
 */
import { certificateExpiry } from "../pki";
import { shellQuote, shellWords } from "../render/shell";
import { runRemote, withoutMachinePrefix } from "./session";
import type { SshTarget } from "./types";

/** Starts each file's section in the answer: the marker, then the path. */
const SECTION = "nodeforge-certificate ";

/**
 * Prints, for each path that is a file, the marker line and then its certificate: a kubeconfig's (`*.conf`)
 * base64 `client-certificate-data`, a certificate file's PEM text. A path that is no file prints nothing.
 */
export function certificateReadScript(paths: readonly string[]): string {
  return [
    "set -eu",
    `for nf_path in ${shellWords(paths)}; do`,
    '  [ -f "$nf_path" ] || continue',
    `  printf '%s%s\\n' ${shellQuote(SECTION)} "$nf_path"`,
    '  case "$nf_path" in',
    // Only base64 characters of the first client-certificate-data: nothing after them on the line (a key) goes.
    "    *.conf) sed -n 's|^[[:space:]]*client-certificate-data:[[:space:]]*\\([A-Za-z0-9+/=]*\\).*|\\1|p' \"$nf_path\" | head -n 1 ;;",
    // The first whole certificate block only: a block cut off before its END line (then a key) is never printed.
    '    *) awk \'/^-----BEGIN CERTIFICATE-----/ { block = ""; inblock = 1 } /^-----/ && !/CERTIFICATE-----/ { inblock = 0 } inblock { block = block $0 "\\n" } /^-----END CERTIFICATE-----/ && inblock { printf "%s", block; exit }\' "$nf_path" ;;',
    "  esac",
    "done",
  ].join("\n");
}

/** The first certificate's expiry (ISO 8601, UTC) in a section: PEM text or a kubeconfig's base64 data. */
function expiryOf(section: string): string | undefined {
  const text = section.trim();
  if (!text) return undefined;
  const pem = text.startsWith("-----BEGIN") ? text : Buffer.from(text.split("\n")[0]!, "base64").toString("utf8");
  return certificateExpiry(pem);
}

/** Each path's expiry from the script's answer; a path absent or holding no certificate is left out. */
export function parseCertificateExpiry(stdout: string): Record<string, string> {
  const expiry: Record<string, string> = {};
  for (const section of stdout.split(new RegExp(`^${SECTION}`, "m")).slice(1)) {
    const newline = section.indexOf("\n");
    const path = newline < 0 ? section : section.slice(0, newline);
    const at = newline < 0 ? undefined : expiryOf(section.slice(newline + 1));
    if (at) expiry[path] = at;
  }
  return expiry;
}

/** When each certificate at `paths` on the target expires, by path (absent files left out). */
export async function readCertificateExpiry(
  target: SshTarget,
  step: string,
  paths: readonly string[],
): Promise<Record<string, string>> {
  if (paths.length === 0) return {};
  let result;
  try {
    result = await runRemote(target, certificateReadScript(paths));
  } catch (error) {
    const message = withoutMachinePrefix(target.machine, (error as Error).message);
    throw new Error(`${target.machine}: ${step}: reading certificates: ${message}`);
  }
  if (result.code !== 0) {
    const detail = result.stderr.trim() || "(no error output)";
    throw new Error(`${target.machine}: ${step}: reading certificates exited ${result.code}: ${detail}`);
  }
  return parseCertificateExpiry(result.stdout);
}
