/** The SSH layer: pinned host keys, pooled sessions, remote commands and the RemoteFile resource. */
export type { SshTarget } from "./types";
export { HostKeyMismatchError, fingerprintOf, parseHostKey, type PinnedHostKey } from "./host-key";
export {
  closeAllSessions,
  runRemote,
  sessionStats,
  withSession,
  type RemoteResult,
  type RunRemoteOptions,
} from "./session";
export {
  RemoteFile,
  remoteFileProvider,
  type RemoteFileArgs,
  type RemoteFileInputs,
  type RemoteFileOutputs,
  type RemoteFileProvider,
  type RemoteFileReadResult,
  type SshTargetInput,
} from "./remote-file";
