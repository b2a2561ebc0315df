/** Stack files: read, validated, defaulted and parsed once into a typed StackSpec (pure: no Pulumi, no SSH). */
export * from "./types";
export * from "./errors";
export { loadStackFile, parseStack, type ParseOptions } from "./load";
export { cidrContains, formatAddress, parseAddress, parseCidr, type Cidr } from "./cidr";
export { API_SERVER_PORT, canonicalHost, formatEndpoint, parseEndpoint, type Endpoint } from "./control-plane";
