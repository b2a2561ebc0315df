/** When certificates expire, for the stack's outputs. */
import { X509Certificate } from "node:crypto";

/**
 * The moment a PEM certificate stops being valid, as an ISO 8601 UTC timestamp; undefined for text that is no
 * certificate (a test double's stand-in), which an output then leaves out rather than failing the whole program.
 */
export function certificateExpiry(pem: string): string | undefined {
  try {
    return new Date(new X509Certificate(pem).validTo).toISOString();
  } catch {
    return undefined;
  }
}
