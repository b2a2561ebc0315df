/** External etcd: members on dedicated machines (see member.ts); certificates come from modules/pki. */
export * from "./member";
