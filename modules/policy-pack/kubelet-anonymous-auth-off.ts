/**
 * Policy: nodeforge's kubelet configuration drop-in turns anonymous authentication off. The kubelet merges the
 * drop-ins of its --config-dir over its base configuration, last: what a drop-in says wins over kubeadm's
 * config.yaml (and the kubelet's own default is anonymous access on), so the drop-in is where "off" is guaranteed.
 */
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { parseAllDocuments } from "yaml";
import { KUBELET_CONFIG_DIR } from "../steps";
import { machineStep } from "./machine-steps";

/** What a KubeletConfiguration document in `text` says of anonymous authentication, one entry per such document. */
function anonymousSettings(text: string): unknown[] {
  const documents = parseAllDocuments(text);
  for (const document of documents) if (document.errors[0]) throw document.errors[0];
  return documents
    .map((document) => document.toJS() as Record<string, unknown> | null)
    .filter((config) => config?.kind === "KubeletConfiguration")
    .map((config) => (config as { authentication?: { anonymous?: { enabled?: unknown } } }).authentication?.anonymous)
    .map((anonymous) => anonymous?.enabled);
}

export const kubeletAnonymousAuthOff: ResourceValidationPolicy = {
  name: "kubelet-anonymous-auth-off",
  description:
    "The KubeletConfiguration drop-in a machine step writes sets authentication.anonymous.enabled: false. With " +
    "anonymous access on, anyone who reaches port 10250 is a user of the kubelet's API (system:anonymous): " +
    "one authorization mistake away from reading pods' logs and secrets or running commands in their containers.",
  validateResource: (args, reportViolation) => {
    const step = machineStep(args.type, args.name, args.props);
    if (!step) return;
    let dropIns = 0;
    for (const path of step.paths.filter((p) => p.startsWith(`${KUBELET_CONFIG_DIR}/`))) {
      const text = step.content(path);
      if (text === undefined) continue;
      let settings: unknown[];
      try {
        settings = anonymousSettings(text);
      } catch (error) {
        reportViolation(`${step.machine}: ${step.step}: ${path} is not YAML: ${(error as Error).message}`);
        continue;
      }
      dropIns += settings.length;
      for (const enabled of settings.filter((value) => value !== false)) {
        const said = enabled === undefined ? "is not set" : `is ${JSON.stringify(enabled)}`;
        reportViolation(`${step.machine}: ${step.step}: ${path}: authentication.anonymous.enabled ${said}, not false`);
      }
    }
    // The step that configures the kubelet must carry the drop-in this policy reads, or the policy checks nothing.
    if (step.step === "configure-kubelet" && dropIns === 0 && step.paths.every((p) => step.file(p))) {
      reportViolation(`${step.machine}: ${step.step}: no KubeletConfiguration drop-in in ${KUBELET_CONFIG_DIR}`);
    }
  },
};
