/**
 * nodeforge's policy pack: what a preview or update of a nodeforge stack must not do, checked by the Pulumi engine
 * on the resources the program registers (`npm run build`, then `pulumi preview --policy-pack modules/policy-pack`).
 * Every policy is mandatory: a violation fails the preview or update. This module starts the pack's gRPC server when
 * loaded (as @pulumi/policy's PolicyPack does), so it is the pack's entry point only; the policies live one a file.
 */
import { PolicyPack } from "@pulumi/policy";
import { hostKeysPinned } from "./host-keys-pinned";
import { kubeletAnonymousAuthOff } from "./kubelet-anonymous-auth-off";
import { kubeletVersionSkew } from "./kubelet-version-skew";
import { oddControlPlaneCount } from "./odd-control-plane-count";
import { secretFilesOwnerOnly } from "./secret-files-owner-only";

new PolicyPack("nodeforge", {
  description: "nodeforge's rules for machines made Kubernetes nodes over SSH.",
  enforcementLevel: "mandatory",
  policies: [hostKeysPinned, secretFilesOwnerOnly, kubeletAnonymousAuthOff, kubeletVersionSkew, oddControlPlaneCount],
});
