/** Compiles schemas/stack.schema.json once and turns ajv's errors into StackIssues. */
import Ajv2020, { type ErrorObject, type ValidateFunction } from "ajv/dist/2020";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../project-root";
import { formatPath, type StackIssue } from "./errors";

type Segment = string | number;

let compiled: ValidateFunction | undefined;
let schemaDoc: Record<string, unknown> | undefined;

export function stackSchema(): Record<string, unknown> {
  schemaDoc ??= JSON.parse(readFileSync(join(projectRoot(), "schemas", "stack.schema.json"), "utf8")) as Record<
    string,
    unknown
  >;
  return schemaDoc;
}

function validator(): ValidateFunction {
  if (!compiled) {
    const ajv = new Ajv2020({ allErrors: true, strict: true, verbose: true });
    // `x-invalid` carries the human sentence shown when a pattern does not match.
    ajv.addKeyword({ keyword: "x-invalid", schemaType: "string" });
    ajv.addKeyword({ keyword: "x-invalid-type", schemaType: "string" });
    compiled = ajv.compile(stackSchema());
  }
  return compiled;
}

function pointerToSegments(pointer: string, data: unknown): Segment[] {
  if (!pointer) return [];
  const segments: Segment[] = [];
  let node: unknown = data;
  for (const raw of pointer.slice(1).split("/")) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (Array.isArray(node)) {
      const index = Number(key);
      segments.push(index);
      node = node[index];
    } else {
      segments.push(key);
      node = node && typeof node === "object" ? (node as Record<string, unknown>)[key] : undefined;
    }
  }
  return segments;
}

function describe(value: unknown): string {
  const text = JSON.stringify(value);
  return text && text.length > 60 ? `${text.slice(0, 57)}...` : (text ?? String(value));
}

function valueAt(data: unknown, segments: Segment[]): unknown {
  return segments.reduce<unknown>(
    (node, s) => (node && typeof node === "object" ? (node as Record<string, unknown>)[s as string] : undefined),
    data,
  );
}

function messageFor(error: ErrorObject, value: unknown, segments: Segment[]): { segments: Segment[]; message: string } {
  const p = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case "required":
      return { segments: [...segments, String(p.missingProperty)], message: "is required" };
    case "additionalProperties": {
      const allowed = Object.keys((error.parentSchema as { properties?: object }).properties ?? {});
      return {
        segments: [...segments, String(p.additionalProperty)],
        message: `unknown property; allowed here: ${allowed.join(", ")}`,
      };
    }
    case "enum":
      return {
        segments,
        message: `${describe(value)} is not allowed; must be one of: ${(p.allowedValues as unknown[]).join(", ")}`,
      };
    case "pattern": {
      const sentence = (error.parentSchema as { "x-invalid"?: string })["x-invalid"];
      return { segments, message: `${describe(value)} ${sentence ?? `must match ${String(p.pattern)}`}` };
    }
    case "type": {
      // Where one value may take several forms (a name or an object), the schema says which in x-invalid-type.
      const sentence = (error.parentSchema as { "x-invalid-type"?: string })["x-invalid-type"];
      return { segments, message: `${describe(value)} ${sentence ?? `must be of type ${String(p.type)}`}` };
    }
    case "minimum":
    case "maximum":
      return { segments, message: `${describe(value)} must be ${String(p.comparison)} ${String(p.limit)}` };
    case "maxLength":
      return { segments, message: `must be at most ${String(p.limit)} characters long` };
    case "minItems":
      return { segments, message: `must have at least ${String(p.limit)} item(s)` };
    case "maxProperties":
      return { segments, message: `must have at most ${String(p.limit)} entries` };
    default:
      return { segments, message: error.message ?? `fails ${error.keyword}` };
  }
}

/** Validates parsed YAML against the schema; returns one issue per problem (empty when valid). */
export function schemaIssues(file: string, data: unknown): (StackIssue & { segments: Segment[] })[] {
  const validate = validator();
  if (validate(data)) return [];
  const seen = new Set<string>();
  const issues: (StackIssue & { segments: Segment[] })[] = [];
  for (const error of validate.errors ?? []) {
    // ajv reports a bad key twice: the inner keyword (with propertyName set) and propertyNames itself; and an
    // if/then/else failure twice: the branch's own error and "must match then/else schema", which says nothing more.
    if (error.keyword === "propertyNames" || error.keyword === "if") continue;
    let base = pointerToSegments(error.instancePath, data);
    let value = valueAt(data, base);
    if (error.propertyName !== undefined) {
      base = [...base, error.propertyName];
      value = error.propertyName;
    }
    const { segments, message } = messageFor(error, value, base);
    const path = formatPath(segments);
    const key = `${path}\n${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    issues.push({ file, path, message, segments });
  }
  return issues;
}
