/**
 * AdminCertificate: the client certificate of the kubeconfig the stack outputs (CN `kubernetes-admin`, O
 * `kubeadm:cluster-admins`, a year), signed by the cluster CA, kept in Pulumi state (key a secret). Reissued when the
 * CA is another one or the stack's `certificates.renewal` changes; kept otherwise. A resource of its own, so that a
 * renewal updates nothing the machines' files are made of (ClusterPki stays as it is, and a preview shows no step
 * whose inputs would become unknown). Loaded by the engine by name (provider-reference.ts).
 */
import * as pulumi from "@pulumi/pulumi";
import { providerReference } from "../provider-reference";
import { issueAdmin } from "./cluster-pki";

export interface AdminCertificateInputs {
  caCert: string;
  caKey: string;
  /** Stack `certificates.renewal`: a new value reissues the certificate. */
  renewal: string;
}

export interface AdminCertificateOutputs extends AdminCertificateInputs {
  cert: string;
  /** A secret. */
  key: string;
}

function converge(news: AdminCertificateInputs, olds?: Partial<AdminCertificateOutputs>): AdminCertificateOutputs {
  const keep = olds?.cert && olds.key && olds.caCert === news.caCert && olds.renewal === news.renewal;
  const issued = keep
    ? { cert: olds.cert!, key: olds.key! }
    : issueAdmin({ cert: news.caCert, key: news.caKey }, Date.now());
  return { ...news, ...issued };
}

export interface AdminCertificateProvider {
  diff(id: string, olds: AdminCertificateOutputs, news: AdminCertificateInputs): Promise<pulumi.dynamic.DiffResult>;
  create(inputs: AdminCertificateInputs): Promise<{ id: string; outs: AdminCertificateOutputs }>;
  read(id: string, props: AdminCertificateOutputs): Promise<{ id: string; props: AdminCertificateOutputs }>;
  update(
    id: string,
    olds: AdminCertificateOutputs,
    news: AdminCertificateInputs,
  ): Promise<{ outs: AdminCertificateOutputs }>;
}

/** The dynamic provider behind AdminCertificate. Exported so tests can drive it directly. */
export const adminCertificateProvider: AdminCertificateProvider = {
  async diff(_id, olds, news) {
    return { changes: olds.caCert !== news.caCert || olds.renewal !== news.renewal, replaces: [] };
  },
  async create(inputs) {
    return { id: "admin-certificate", outs: converge(inputs) };
  },
  // Nothing lives outside the state: what was recorded is what there is.
  async read(id, props) {
    return { id, props };
  },
  async update(_id, olds, news) {
    return { outs: converge(news, olds) };
  },
};

/** The admin kubeconfig's client certificate (see the module comment). */
export class AdminCertificate extends pulumi.dynamic.Resource {
  declare readonly cert: pulumi.Output<string>;
  declare readonly key: pulumi.Output<string>;

  constructor(
    name: string,
    args: { caCert: pulumi.Input<string>; caKey: pulumi.Input<string>; renewal: string },
    opts?: pulumi.CustomResourceOptions,
  ) {
    const options = pulumi.mergeOptions(opts, { additionalSecretOutputs: ["key"] });
    super(
      providerReference(adminCertificateProvider, "adminCertificateProvider"),
      name,
      { ...args, cert: undefined, key: undefined },
      options,
      "nodeforge",
      "AdminCertificate",
    );
    this.key = pulumi.secret(this.key);
  }
}
