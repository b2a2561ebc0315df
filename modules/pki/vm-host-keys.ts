/**
 * VmHostKeys: the SSH host key of every VM nodeforge creates, generated once (ed25519) and kept in Pulumi state as a
 * secret. Each VM's cloud-init seed installs its private key before sshd first starts, and every connection to the
 * VM pins its public key: the VM is verified from its first boot, with no trust on first use. A VM keeps its key for
 * as long as it is in the stack; a new VM gets a new key on the next `pulumi up` (an update), a VM dropped from the
 * stack loses its.
 *
 * Loaded by the engine by name (provider-reference.ts); uses ssh2's key generator (OpenSSH formats).
 */
import * as pulumi from "@pulumi/pulumi";
import { providerReference } from "../provider-reference";

/** ssh2's key generator (ssh2 ships no types of its own; node-ssh depends on it). */
const { utils } = require("ssh2") as {
  utils: { generateKeyPairSync(type: "ed25519"): { private: string; public: string } };
};

/** One VM's host key pair: the OpenSSH private key file's text, and the public key as `ssh-ed25519 <base64>`. */
export interface VmHostKey {
  privateKey: string;
  publicKey: string;
}

export interface VmHostKeysInputs {
  /** The VMs' names. */
  vms: string[];
}

export interface VmHostKeysOutputs extends VmHostKeysInputs {
  /** By VM name. A secret. */
  keys: Record<string, VmHostKey>;
}

function newHostKey(): VmHostKey {
  const pair = utils.generateKeyPairSync("ed25519");
  // The public key without ssh2's comment: what a stack file's hostKey and known_hosts hold.
  return { privateKey: pair.private, publicKey: pair.public.split(" ").slice(0, 2).join(" ") };
}

/** Keeps the recorded key of every VM still listed; generates one for each new VM. */
export function convergeHostKeys(news: VmHostKeysInputs, olds?: Partial<VmHostKeysOutputs>): VmHostKeysOutputs {
  const keys: Record<string, VmHostKey> = {};
  for (const vm of news.vms) keys[vm] = olds?.keys?.[vm] ?? newHostKey();
  return { vms: news.vms, keys };
}

export interface VmHostKeysProvider {
  check(olds: VmHostKeysInputs, news: VmHostKeysInputs): Promise<pulumi.dynamic.CheckResult<VmHostKeysInputs>>;
  diff(id: string, olds: VmHostKeysOutputs, news: VmHostKeysInputs): Promise<pulumi.dynamic.DiffResult>;
  create(inputs: VmHostKeysInputs): Promise<{ id: string; outs: VmHostKeysOutputs }>;
  read(id: string, props: VmHostKeysOutputs): Promise<{ id: string; props: VmHostKeysOutputs }>;
  update(id: string, olds: VmHostKeysOutputs, news: VmHostKeysInputs): Promise<{ outs: VmHostKeysOutputs }>;
}

/** The dynamic provider behind VmHostKeys. Exported so tests can drive it directly. */
export const vmHostKeysProvider: VmHostKeysProvider = {
  async check(_olds, news) {
    const bad = Array.isArray(news.vms)
      ? news.vms.filter((vm) => typeof vm === "string" && !/^[a-z0-9-]+$/.test(vm))
      : [];
    return bad.length > 0
      ? { inputs: news, failures: [{ property: "vms", reason: `not VM names: ${bad.join(", ")}` }] }
      : { inputs: news };
  },
  async diff(_id, olds, news) {
    return { changes: JSON.stringify(olds.vms) !== JSON.stringify(news.vms), replaces: [] };
  },
  async create(inputs) {
    return { id: "vm-host-keys", outs: convergeHostKeys(inputs) };
  },
  // Nothing lives outside the state: what was recorded is what there is.
  async read(id, props) {
    return { id, props };
  },
  async update(_id, olds, news) {
    return { outs: convergeHostKeys(news, olds) };
  },
};

/** The host keys of a cluster's VMs (see the module comment). */
export class VmHostKeys extends pulumi.dynamic.Resource {
  declare readonly keys: pulumi.Output<Record<string, VmHostKey>>;

  constructor(name: string, args: { vms: string[] }, opts?: pulumi.CustomResourceOptions) {
    const options = pulumi.mergeOptions(opts, { additionalSecretOutputs: ["keys"] });
    super(
      providerReference(vmHostKeysProvider, "vmHostKeysProvider"),
      name,
      { vms: args.vms, keys: undefined },
      options,
      "nodeforge",
      "VmHostKeys",
    );
    this.keys = pulumi.secret(this.keys);
  }
}
