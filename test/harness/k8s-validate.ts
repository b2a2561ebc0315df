/**
 * Validates Kubernetes manifests against the Kubernetes API's OpenAPI schemas, as compiled by the
 * `kubernetes-models` package (dev dependency; its models carry a validate() generated from the upstream schema).
 * kubernetes-models is ESM-only and this project compiles to CommonJS, so the models are loaded with a real
 * dynamic import() of their files (a `new Function` keeps TypeScript from turning it into require()).
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { projectRoot } from "../../modules/project-root";

interface Model {
  validate(): void;
}
type ModelClass = new (data: unknown) => Model;

const importEsm = new Function("url", "return import(url)") as (url: string) => Promise<Record<string, unknown>>;

/** apiVersion/kind -> the model's module under kubernetes-models (the kinds nodeforge renders or applies). */
const MODELS: Record<string, string> = {
  "v1/Namespace": "v1/Namespace.js",
  "v1/Pod": "v1/Pod.js",
  "v1/ConfigMap": "v1/ConfigMap.js",
  "v1/ServiceAccount": "v1/ServiceAccount.js",
  "apps/v1/DaemonSet": "apps/v1/DaemonSet.js",
  "rbac.authorization.k8s.io/v1/ClusterRole": "rbac.authorization.k8s.io/v1/ClusterRole.js",
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": "rbac.authorization.k8s.io/v1/ClusterRoleBinding.js",
  "apiextensions.k8s.io/v1/CustomResourceDefinition": "apiextensions.k8s.io/v1/CustomResourceDefinition.js",
};

const cache = new Map<string, ModelClass>();

async function modelFor(apiVersion: string, kind: string): Promise<ModelClass> {
  const key = `${apiVersion}/${kind}`;
  const cached = cache.get(key);
  if (cached) return cached;
  const file = MODELS[key];
  if (!file) throw new Error(`no schema model for ${key}`);
  const url = pathToFileURL(join(projectRoot(), "node_modules", "kubernetes-models", file)).href;
  const model = (await importEsm(url))[kind] as ModelClass | undefined;
  if (!model) throw new Error(`kubernetes-models/${file} exports no ${kind}`);
  cache.set(key, model);
  return model;
}

/**
 * The schema violations of one manifest (empty when valid): `apiVersion` and `kind` pick the schema, the whole
 * object is validated against it (required fields, types, enums, formats).
 */
export async function kubernetesSchemaErrors(manifest: unknown): Promise<string[]> {
  const { apiVersion, kind } = (manifest ?? {}) as { apiVersion?: unknown; kind?: unknown };
  if (typeof apiVersion !== "string" || typeof kind !== "string") return ["apiVersion and kind must be strings"];
  const Model = await modelFor(apiVersion, kind);
  try {
    new Model(manifest).validate();
    return [];
  } catch (error) {
    return [(error as Error).message];
  }
}
