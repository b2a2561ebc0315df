/**
 * Pulumi's own unit-test mocks (no CLI, no engine): resources register against an in-memory monitor.
 * `captureProgram` builds resources under a transformation that records every resource's type, name,
 * inputs, parent and dependsOn, then waits until the mock engine registered all of them.
 */
import * as pulumi from "@pulumi/pulumi";

export interface CapturedResource {
  type: string;
  name: string;
  resource: pulumi.Resource;
  props: Record<string, unknown>;
  parent?: pulumi.Resource;
  dependsOn: pulumi.Resource[];
}

export interface RegisteredResource {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}

let installed = false;
export const registered: RegisteredResource[] = [];

/** Installs the mocks once per process. Must run before the program's modules create resources. */
export function installMocks(): void {
  if (installed) return;
  installed = true;
  void pulumi.runtime.setMocks(
    {
      newResource(args) {
        registered.push({ type: args.type, name: args.name, inputs: args.inputs as Record<string, unknown> });
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call(args) {
        return args.inputs;
      },
    },
    "nodeforge",
    "test",
    false,
  );
}

export function outputValue<T>(output: pulumi.Output<T> | pulumi.Input<T>): Promise<T> {
  return new Promise((resolve) => pulumi.output(output).apply((value) => resolve(value as T)));
}

export async function isSecret(value: unknown): Promise<boolean> {
  if (!pulumi.Output.isInstance(value)) return false;
  return (value as unknown as { isSecret: Promise<boolean> }).isSecret;
}

/** Runs `build(transformation)` and returns every resource it created, fully registered. */
export async function captureProgram(
  build: (transformations: pulumi.ResourceTransformation[]) => void,
): Promise<CapturedResource[]> {
  installMocks();
  const captured: CapturedResource[] = [];
  const record: pulumi.ResourceTransformation = (args) => {
    const dependsOn = args.opts.dependsOn;
    captured.push({
      type: args.type,
      name: args.name,
      resource: args.resource,
      props: args.props as Record<string, unknown>,
      parent: args.opts.parent,
      dependsOn: Array.isArray(dependsOn)
        ? (dependsOn as pulumi.Resource[])
        : dependsOn
          ? [dependsOn as pulumi.Resource]
          : [],
    });
    return undefined;
  };
  build([record]);
  await Promise.all(captured.map((c) => outputValue(c.resource.urn)));
  return captured;
}
