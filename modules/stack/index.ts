export * from "./types";
export * from "./errors";
export { loadStackFile, parseStack, type ParseOptions } from "./load";
