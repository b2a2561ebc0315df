/** The SSH layer: pinned host keys, pooled sessions (direct or through a bastion), remote commands and resources. */
export type { BastionTarget, SshTarget } from "./types";
export { HostKeyMismatchError, fingerprintOf, parseHostKey, type PinnedHostKey } from "./host-key";
export { scanHostKey, type HostKeyScan, type ScanRequest } from "./scan";
export {
  closeAllSessions,
  runRemote,
  sessionStats,
  withSession,
  type RemoteResult,
  type RunRemoteOptions,
} from "./session";
export { SshConnectError } from "./dial";
export { privilegedCommandLine, sudoPasswordLine, type Privilege } from "./command-line";
export {
  MachineStep,
  machineStepProvider,
  type MachineStepArgs,
  type MachineStepFile,
  type MachineStepInputs,
  type MachineStepOutputs,
  type MachineStepProvider,
  type StepFileState,
  type StepUnitState,
} from "./machine-step";
export {
  remoteScriptProvider,
  type RemoteScriptInputs,
  type RemoteScriptOutputs,
  type RemoteScriptProvider,
} from "./remote-script";
export {
  remoteFileProvider,
  type RemoteFileInputs,
  type RemoteFileOutputs,
  type RemoteFileProvider,
  type RemoteFileReadResult,
} from "./remote-file";
export {
  unitStateProvider,
  type UnitStateInputs,
  type UnitStateOutputs,
  type UnitStateProvider,
  type UnitStateReadResult,
} from "./unit-state";
