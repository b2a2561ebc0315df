/**
 * Handlebars, configured the way nodeforge needs it: strict (a missing variable is an error, never an
 * empty string), no HTML escaping, and a few helpers for quoting values into shell, TOML and YAML.
 */
import Handlebars from "handlebars";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../project-root";
import { shellQuote } from "./shell";

const engine = Handlebars.create();

engine.registerHelper("sh", (value: unknown) => {
  if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
    throw new Error(`template helper sh: expected a string, number or boolean, got ${typeof value}`);
  }
  return shellQuote(value);
});
/** A TOML basic string (JSON string escaping is a subset TOML accepts for basic strings). */
engine.registerHelper("toml", (value: unknown) => {
  if (typeof value !== "string") throw new Error("template helper toml: expected a string");
  return JSON.stringify(value).replace(/\u007f/g, "\\u007f");
});
/** A YAML/JSON scalar: JSON is valid YAML flow syntax, and quoting everything avoids YAML's type guessing. */
engine.registerHelper("json", (value: unknown) => JSON.stringify(value));
/** A systemd unit file value: systemd has no general quoting, so refuse anything but a plain word. */
engine.registerHelper("unitword", (value: unknown) => {
  const text = String(value);
  if (!/^[A-Za-z0-9_@%+=:,./-]+$/.test(text))
    throw new Error(`template helper unitword: unsafe value ${JSON.stringify(text)}`);
  return text;
});
engine.registerHelper("indent", (spaces: number, text: string) => {
  const pad = " ".repeat(spaces);
  return text
    .split("\n")
    .map((line) => (line ? pad + line : line))
    .join("\n");
});

/*
 * Handlebars' strict mode only checks plain `{{name}}` lookups: a missing variable passed to a helper
 * (`{{json x}}`, `{{#each x}}`, `{{#if x}}`) arrives as undefined and renders as an empty string or an
 * empty loop. Every helper, the built-in block helpers included, therefore refuses undefined arguments
 * (`trackIds` below gives it the argument's name for the message).
 */
interface HelperCallOptions {
  /** The arguments' names as written in the template (with `trackIds`). */
  ids?: (string | null)[];
  loc?: { start: { line: number; column: number } };
}
for (const [name, helper] of Object.entries(engine.helpers)) {
  if (name === "helperMissing" || name === "blockHelperMissing") continue;
  engine.registerHelper(name, function (this: unknown, ...args: unknown[]) {
    const options = args[args.length - 1] as HelperCallOptions;
    const missing = args.slice(0, -1).findIndex((arg) => arg === undefined);
    if (missing >= 0) {
      const at = options.loc ? ` - ${options.loc.start.line}:${options.loc.start.column}` : "";
      throw new Error(`"${options.ids?.[missing] ?? `argument ${missing + 1}`}" not defined (helper ${name})${at}`);
    }
    return (helper as (...a: unknown[]) => unknown).apply(this, args);
  });
}

/** `trackIds` (real, but missing from the type declarations) hands helpers their arguments' names. */
const COMPILE_OPTIONS = { strict: true, noEscape: true, trackIds: true } as Parameters<typeof engine.compile>[1];

const cache = new Map<string, Handlebars.TemplateDelegate>();
let partialsLoaded = false;

/** Registers templates/partials/<name>.<ext>.hbs as partial <name> (e.g. `{{> prelude}}`). */
function loadPartials(): void {
  if (partialsLoaded) return;
  const dir = join(projectRoot(), "templates", "partials");
  for (const file of readdirSync(dir)) {
    engine.registerPartial(file.split(".")[0] as string, readFileSync(join(dir, file), "utf8"));
  }
  partialsLoaded = true;
}

/** Renders `templates/<name>` with the given values. Throws naming the template on any missing value. */
export function render(name: string, values: object): string {
  loadPartials();
  let template = cache.get(name);
  if (!template) {
    const source = readFileSync(join(projectRoot(), "templates", name), "utf8");
    template = engine.compile(source, COMPILE_OPTIONS);
    cache.set(name, template);
  }
  try {
    return template(values);
  } catch (error) {
    throw new Error(`template ${name}: ${(error as Error).message}`);
  }
}
