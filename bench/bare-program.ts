/**
 * The baseline of the evaluation benchmarks: a Pulumi program that registers `count` plain dynamic resources (a
 * provider that does nothing, one small input each), the least any program with that many resources costs the
 * Pulumi SDK and engine. Its figures beside nodeforge's show nodeforge's own overhead as a ratio.
 */
import * as pulumi from "@pulumi/pulumi";

const nothing: pulumi.dynamic.ResourceProvider = {
  async create(inputs: { index: number }) {
    return { id: `bare-${inputs.index}`, outs: inputs };
  },
};

class Bare extends pulumi.dynamic.Resource {
  constructor(index: number, opts?: pulumi.CustomResourceOptions) {
    super(nothing, `bare-${index}`, { index }, opts, "bench", "Bare");
  }
}

/** Registers `count` plain resources. */
export function registerBare(count: number, opts?: pulumi.CustomResourceOptions): void {
  for (let index = 0; index < count; index++) new Bare(index, opts);
}

/**
 * The bare program's index.ts, for a project of its own that the real CLI runs the way it runs nodeforge's. With
 * `payloadBytes`, each resource also carries that many bytes of text and a secret object (as a step carries its
 * files, script and SSH target): the same data volume as nodeforge's resources, without nodeforge.
 */
export function bareProgramSource(count: number, payloadBytes = 0): string {
  const inputs =
    payloadBytes > 0
      ? `{ index, payload: "x".repeat(${payloadBytes}), target: pulumi.secret({ key: "k".repeat(1000) }) }`
      : "{ index }";
  return [
    'import * as pulumi from "@pulumi/pulumi";',
    "const nothing: pulumi.dynamic.ResourceProvider = {",
    "  async create(inputs: { index: number }) {",
    "    return { id: `bare-${inputs.index}`, outs: inputs };",
    "  },",
    "};",
    "class Bare extends pulumi.dynamic.Resource {",
    "  constructor(index: number) {",
    `    super(nothing, \`bare-\${index}\`, ${inputs}, {}, "bench", "Bare");`,
    "  }",
    "}",
    `for (let index = 0; index < ${count}; index++) new Bare(index);`,
    "",
  ].join("\n");
}
