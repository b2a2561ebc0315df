/**
 * A dynamic provider that the engine loads from the installed nodeforge package by name instead of carrying its
 * code. Pulumi serializes a dynamic provider's closure (for a project's own modules, their whole code) into every
 * resource's `__provider` input: about 70 KB a MachineStep, which a 100-machine stack's preview paid for 606 times
 * (measured: 14.0 s against 4.8 s for a bare program; a bare program given the same 70 KB provider took 10.1 s), and
 * which filled the state file. The reference is about 3 KB and the same for every version of nodeforge,
 * so an upgraded nodeforge also deletes and refreshes what an earlier one made, as a provider plugin would.
 *
 * The dynamic-provider host runs in the Pulumi project's directory: `nodeforge/providers` resolves there as the
 * package itself (its own project: Node's self-reference through "exports") or as a dependency under node_modules
 * (a program that composes nodeforge's components). It is built JavaScript (build/), which `npm ci` and
 * `npm run build` make; a checkout whose sources are newer than that build is refused (build-freshness.ts).
 */
import { buildProblem, PROVIDERS_MODULE } from "./build-freshness";
import { projectRoot } from "./project-root";

type Method = "check" | "diff" | "create" | "read" | "update" | "delete";
const METHODS: readonly Method[] = ["check", "diff", "create", "read", "update", "delete"];

/**
 * The named provider, loaded in the dynamic-provider host's process (once: require caches it). Uses only built-ins,
 * so that the closure serializer writes this function and nothing of nodeforge's code. Resolved from the project's
 * directory: the host's own module has no path to resolve a package from.
 */
function loadProvider(moduleName: string, exportName: string): Record<string, (...args: unknown[]) => unknown> {
  const load = require("node:module").createRequire(require("node:path").join(process.cwd(), "pulumi-program.js"));
  let providers: Record<string, Record<string, (...args: unknown[]) => unknown> | undefined>;
  try {
    providers = load(moduleName);
  } catch (error) {
    throw new Error(
      `nodeforge: cannot load its dynamic providers (${moduleName}) from ${process.cwd()}: ` +
        `${(error as Error).message}; run \`npm run build\` in nodeforge, or install it as a dependency`,
    );
  }
  const provider = providers[exportName];
  if (!provider) {
    throw new Error(
      `nodeforge: ${moduleName} (from ${process.cwd()}) has no ${exportName}: the installed nodeforge is older ` +
        "than the one that made these resources",
    );
  }
  return provider;
}

/** One method of the reference; captures two strings and loadProvider. */
function forward(moduleName: string, exportName: string, method: Method) {
  return (...args: unknown[]): unknown => loadProvider(moduleName, exportName)[method]!(...args);
}

/** References made, by export name: one object each, as Pulumi serializes a provider once per object. */
const references = new Map<string, object>();

/** The reference to `provider`, exported from modules/providers.ts as `exportName`; the same object every call. */
export function providerReference<T extends object>(provider: T, exportName: string): T {
  const made = references.get(exportName);
  if (made) return made as T;
  const problem = buildProblem(projectRoot(), process.cwd());
  if (problem) throw new Error(`nodeforge: ${problem}`);
  const reference: Record<string, unknown> = {};
  for (const method of METHODS) {
    if (typeof (provider as Record<string, unknown>)[method] === "function") {
      reference[method] = forward(PROVIDERS_MODULE, exportName, method);
    }
  }
  references.set(exportName, reference);
  return reference as T;
}
