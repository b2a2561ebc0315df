export { render } from "./engine";
export { shellQuote, shellWords } from "./shell";
