/** Stack files: read, validated, defaulted and parsed once into a typed StackSpec (pure: no Pulumi, no SSH). */
export * from "./types";
export * from "./errors";
export { loadStackFile, parseStack, type ParseOptions } from "./load";
export { API_SERVER_PORT, canonicalHost, formatEndpoint } from "./control-plane";
export {
  allowedUpgrades,
  checkFactsTransition,
  checkTransition,
  clusterFacts,
  versionChangeIssue,
  type ClusterFacts,
} from "./transition";
