#!/usr/bin/env node
/** The `nodeforge` command: offline checks and rendering of stack files (provisioning is `pulumi up`). */
import { join } from "node:path";
import { renderCommand } from "./render";
import { validateCommand } from "./validate";

const USAGE = `usage:
  nodeforge validate FILE...                          check stack files; exit 2 when invalid
  nodeforge render FILE --machine NAME [--out DIR]    write what would go onto a machine (default DIR: rendered/NAME)
`;

function option(args: string[], name: string): string | undefined {
  const at = args.indexOf(name);
  if (at < 0) return undefined;
  const value = args[at + 1];
  args.splice(at, 2);
  return value;
}

export function main(argv: string[]): number {
  const [command, ...rest] = argv;
  if (command === "validate" && rest.length > 0) return validateCommand(rest, process.stdout, process.stderr);
  if (command === "render") {
    const machine = option(rest, "--machine");
    const out = option(rest, "--out");
    if (machine && rest.length === 1 && rest[0]) {
      return renderCommand(rest[0], machine, out ?? join("rendered", machine), process.stdout, process.stderr);
    }
  }
  process.stderr.write(USAGE);
  return 64;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
