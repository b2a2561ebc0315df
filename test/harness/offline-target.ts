import type { SshTarget } from "../../modules/remote/types";
import { freePort } from "./ports";

/** A target for provider methods that never connect (check, diff): well-formed, pointing nowhere reachable. */
export function offlineTarget(overrides: Partial<SshTarget> = {}): SshTarget {
  return {
    machine: "cp-1",
    host: "10.0.0.5",
    port: 22,
    user: "root",
    privateKey: "not used: check and diff never connect",
    hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    sudo: false,
    connectTimeoutSeconds: 5,
    ...overrides,
  };
}

/** A port on 127.0.0.1 where nothing listens (it was just bound and closed): a connection to it is refused. */
export function closedPort(): Promise<number> {
  return freePort("127.0.0.1");
}
