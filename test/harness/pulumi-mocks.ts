/**
 * Pulumi's own unit-test mocks (no CLI, no engine): resources register against an in-memory monitor.
 * `captureProgram` builds resources under a transformation that records every resource's type, name,
 * inputs, parent and dependsOn, then waits until the mock engine registered all of them.
 */
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { convergeHostKeys } from "../../modules/pki";

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

export const CLUSTER_PKI_TYPE = "pulumi-nodejs:dynamic/nodeforge:ClusterPki";

/**
 * What the mock engine answers for ClusterPki, whose real provider generates keys (seconds of RSA in pure JS):
 * well-formed stand-ins, clearly not key material, so programs that render kubeadm files evaluate quickly.
 */
export const FAKE_CLUSTER_PKI: Record<string, string> = {
  caCert: "TEST CA CERTIFICATE",
  caKey: "TEST CA KEY",
  frontProxyCaCert: "TEST FRONT PROXY CA CERTIFICATE",
  frontProxyCaKey: "TEST FRONT PROXY CA KEY",
  etcdCaCert: "TEST ETCD CA CERTIFICATE",
  etcdCaKey: "TEST ETCD CA KEY",
  serviceAccountKey: "TEST SERVICE ACCOUNT KEY",
  serviceAccountPub: "TEST SERVICE ACCOUNT PUBLIC KEY",
  bootstrapToken: "abcdef.0123456789abcdef",
  caCertHash: `sha256:${"1".repeat(64)}`,
  adminCert: "TEST ADMIN CERTIFICATE",
  adminKey: "TEST ADMIN KEY",
};

export const ETCD_PKI_TYPE = "pulumi-nodejs:dynamic/nodeforge:EtcdPki";

/**
 * What the mock engine answers for EtcdPki (its real provider generates RSA keys): stand-ins, clearly not key
 * material. Member certificates follow the inputs' members (name and address), as etcdMemberFiles checks them.
 */
export const FAKE_ETCD_PKI = {
  caCert: "TEST ETCD EXTERNAL CA CERTIFICATE",
  caKey: "TEST ETCD EXTERNAL CA KEY",
  clientCert: "TEST ETCD CLIENT CERTIFICATE",
  clientKey: "TEST ETCD CLIENT KEY",
  memberCert: (name: string) => `TEST ETCD MEMBER CERTIFICATE ${name}`,
  memberKey: (name: string) => `TEST ETCD MEMBER KEY ${name}`,
};

function fakeEtcdPki(inputs: Record<string, unknown>): Record<string, unknown> {
  const members = Array.isArray(inputs.members) ? (inputs.members as { name: string; address: string }[]) : [];
  return {
    caCert: FAKE_ETCD_PKI.caCert,
    caKey: FAKE_ETCD_PKI.caKey,
    clientCert: FAKE_ETCD_PKI.clientCert,
    clientKey: FAKE_ETCD_PKI.clientKey,
    memberCerts: Object.fromEntries(
      members.map((m) => [m.name, { address: m.address, cert: FAKE_ETCD_PKI.memberCert(m.name) }]),
    ),
    memberKeys: Object.fromEntries(members.map((m) => [m.name, FAKE_ETCD_PKI.memberKey(m.name)])),
  };
}

export const VM_HOST_KEYS_TYPE = "pulumi-nodejs:dynamic/nodeforge:VmHostKeys";
/** The admin kubeconfig's certificate: the fake PKI's admin certificate and key. */
export const ADMIN_CERTIFICATE_TYPE = "pulumi-nodejs:dynamic/nodeforge:AdminCertificate";

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
        const inputs = args.inputs as Record<string, unknown>;
        // VM host keys are ed25519: generated for real, quickly.
        const generated =
          args.type === CLUSTER_PKI_TYPE
            ? FAKE_CLUSTER_PKI
            : args.type === ETCD_PKI_TYPE
              ? fakeEtcdPki(inputs)
              : args.type === VM_HOST_KEYS_TYPE
                ? convergeHostKeys({ vms: inputs.vms as string[] })
                : args.type === ADMIN_CERTIFICATE_TYPE
                  ? { cert: FAKE_CLUSTER_PKI.adminCert, key: FAKE_CLUSTER_PKI.adminKey }
                  : {};
        return { id: `${args.name}-id`, state: { ...args.inputs, ...generated } };
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

/** The captured resource named `name`; fails the test when the program did not register it. */
export function findResource(resources: CapturedResource[], name: string): CapturedResource {
  const found = resources.find((r) => r.name === name);
  assert.ok(found, `resource ${name} was registered`);
  return found;
}

/** The type of every planned step's resource. */
export const STEP_TYPE = "pulumi-nodejs:dynamic/nodeforge:MachineStep";

/** A step's file as its resource's inputs give it: the content from `files`, or from `secretContents`. */
export interface StepFileSeen {
  mode: string;
  owner: string;
  group: string;
  sha256: string;
  content: string;
  /** Its content travels in `secretContents` (a Pulumi secret), not in `files`. */
  secret: boolean;
}

/** A MachineStep's files by path, with their contents resolved. */
export async function stepFiles(step: CapturedResource): Promise<Record<string, StepFileSeen>> {
  const files = await outputValue(
    step.props.files as pulumi.Input<
      Record<string, { mode: string; owner: string; group: string; sha256: string; content?: string }>
    >,
  );
  const secrets = await outputValue((step.props.secretContents ?? {}) as pulumi.Input<Record<string, string>>);
  return Object.fromEntries(
    Object.entries(files).map(([path, f]) => [
      path,
      {
        ...f,
        content: f.content ?? secrets[path] ?? assert.fail(`${path}: no content`),
        secret: f.content === undefined,
      },
    ]),
  );
}

/** A MachineStep's units by name, as its inputs give them. */
export async function stepUnits(
  step: CapturedResource,
): Promise<Record<string, { enabled: boolean; active?: boolean }>> {
  return outputValue((step.props.units ?? {}) as pulumi.Input<Record<string, { enabled: boolean; active?: boolean }>>);
}

/** A MachineStep's `step` input: its name, script, delete script and triggers (Inputs, as the program gave them). */
export function runOf(step: CapturedResource): {
  name: string;
  script: pulumi.Input<string>;
  deleteScript: pulumi.Input<string>;
  triggers: pulumi.Input<string>[];
} {
  return step.props.step as ReturnType<typeof runOf>;
}
