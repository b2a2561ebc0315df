export * from "./types";
export * from "./errors";
export { loadStackFile, parseStack } from "./load";
