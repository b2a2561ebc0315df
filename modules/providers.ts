/**
 * The implementations of nodeforge's dynamic providers, as the engine's dynamic-provider host loads them: by the
 * package's name (`nodeforge/providers`, package.json "exports"), not from a copy of their code in each resource's
 * state (see provider-reference.ts). Only the providers' own modules load here: no program, no templates.
 */
export { machineStepProvider } from "./remote/machine-step";
export { clusterPkiProvider } from "./pki/cluster-pki";
export { etcdPkiProvider } from "./pki/etcd-pki";
export { vmHostKeysProvider } from "./pki/vm-host-keys";
export { clusterFactsProvider } from "./components/cluster-facts";
export { adminCertificateProvider } from "./pki/admin-certificate";
