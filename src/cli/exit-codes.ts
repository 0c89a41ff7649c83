import type { ErrorCode } from '../errors/index.js';

/**
 * Exit codes of `coffer`, the one place errors become numbers (documented in the README's
 * "Exit codes" table; scripts rely on them, never renumber).
 */
export const ExitCode = {
  ok: 0,
  /** Anything not covered below: a storage I/O failure, or a bug. */
  failure: 1,
  /** The command line is wrong, or names something that does not exist. */
  usage: 2,
  /** The source (an image, a device) cannot be read, or shrank while read. */
  sourceUnreadable: 3,
  /** The restore target cannot be written. */
  targetUnwritable: 4,
  /** The repository's or the target's storage is full. */
  noSpace: 5,
  /** No repository at the location given. */
  repositoryNotFound: 10,
  /** The repository is damaged, or written by a newer Coffer. */
  repositoryDamaged: 11,
  /** The passphrase opens no key. */
  wrongPassphrase: 12,
  /** Verify found missing or corrupt data. */
  verifyFailed: 13,
  /** A volume or filesystem inside the backup cannot be browsed: damaged, encrypted or unsupported. */
  contentUnreadable: 14,
  /** A test restore found the snapshot does not restore intact (the report says why). */
  testRestoreFailed: 15,
  /** A backup and a prune would overlap and the other did not end in time (or a lease was lost). */
  repositoryBusy: 16,
  /** A hook command failed or timed out (file backups: `--pre-hook`, `--post-hook`). */
  hookFailed: 17,
  /**
   * A file backup saved its snapshot, but some files changed, vanished or could not be read
   * while it ran (the snapshot's warnings name them): like restic's 3.
   */
  filesIncomplete: 18,
  /** The command does not support the repository's format: a format 2 repository with more index segments than this Coffer holds (`coffer repair --index` rewrites them). */
  formatUnsupported: 19,
  /** The service's state database cannot be opened, or is newer than this Coffer. */
  stateUnavailable: 20,
  /** A repository server (or `coffer server`, to an agent) refused the token or the operation, or its certificate is not trusted. */
  accessDenied: 21,
  /** `coffer server`: the configuration file is invalid. */
  configInvalid: 22,
  /** `coffer server`: the address is in use or cannot be listened on. */
  addressUnavailable: 23,
  /** Interrupted by Ctrl-C or a signal. */
  interrupted: 130,
} as const;

const BY_CODE: Record<ErrorCode, number> = {
  E_USAGE: ExitCode.usage,
  E_NO_PASSPHRASE: ExitCode.usage,
  E_SNAPSHOT_NOT_FOUND: ExitCode.usage,
  E_SNAPSHOT_PROTECTED: ExitCode.usage,
  E_SNAPSHOT_LOCKED: ExitCode.usage,
  // Only a later run can delete it: the storage refused, as for any storage failure.
  E_OBJECT_LOCKED: ExitCode.failure,
  E_DISK_NOT_FOUND: ExitCode.usage,
  E_KEY_REFUSED: ExitCode.usage,
  E_REPO_EXISTS: ExitCode.usage,
  E_WRONG_PASSPHRASE: ExitCode.wrongPassphrase,
  E_REPO_NOT_FOUND: ExitCode.repositoryNotFound,
  E_REPO_DAMAGED: ExitCode.repositoryDamaged,
  E_REPO_VERSION: ExitCode.repositoryDamaged,
  E_CORRUPT_OBJECT: ExitCode.repositoryDamaged,
  E_MISSING_OBJECT: ExitCode.repositoryDamaged,
  E_SOURCE_UNREADABLE: ExitCode.sourceUnreadable,
  E_SOURCE_SHRUNK: ExitCode.sourceUnreadable,
  E_IMAGE_INVALID: ExitCode.sourceUnreadable,
  E_UNSUPPORTED_FORMAT: ExitCode.sourceUnreadable,
  E_TARGET_UNWRITABLE: ExitCode.targetUnwritable,
  E_NO_SPACE: ExitCode.noSpace,
  E_BACKEND_IO: ExitCode.failure,
  E_INTERRUPTED: ExitCode.interrupted,
  E_HOOK_FAILED: ExitCode.hookFailed,
  E_REPO_BUSY: ExitCode.repositoryBusy,
  E_LEASE_LOST: ExitCode.repositoryBusy,
  E_VERIFY_FAILED: ExitCode.verifyFailed,
  E_VOLUME_NOT_FOUND: ExitCode.usage,
  E_PATH_NOT_FOUND: ExitCode.usage,
  E_VOLUME_ENCRYPTED: ExitCode.contentUnreadable,
  E_FS_UNSUPPORTED: ExitCode.contentUnreadable,
  E_FS_CORRUPT: ExitCode.contentUnreadable,
  // A hypervisor or NBD peer that fails is a source that cannot be read.
  E_PROTOCOL: ExitCode.sourceUnreadable,
  E_CONNECTION_FAILED: ExitCode.sourceUnreadable,
  E_TIMEOUT: ExitCode.sourceUnreadable,
  E_QMP_ERROR: ExitCode.sourceUnreadable,
  E_NBD_ERROR: ExitCode.sourceUnreadable,
  E_LIBVIRT_ERROR: ExitCode.sourceUnreadable,
  E_DOMAIN_NOT_FOUND: ExitCode.usage,
  // A damaged tape is damaged backup data; a volume left out is a command line to complete.
  E_TAPE_INVALID: ExitCode.repositoryDamaged,
  E_TAPE_VOLUME_MISSING: ExitCode.usage,
  E_STATE_UNAVAILABLE: ExitCode.stateUnavailable,
  E_STATE_TOO_NEW: ExitCode.stateUnavailable,
  E_ACCESS_DENIED: ExitCode.accessDenied,
  E_SERVER_UNTRUSTED: ExitCode.accessDenied,
  E_TASK_NOT_FOUND: ExitCode.usage,
  E_WORKER_FAILED: ExitCode.failure,
  E_WINDOW_CLOSED: ExitCode.failure,
  E_CONFIG_INVALID: ExitCode.configInvalid,
  E_ADDRESS_IN_USE: ExitCode.addressUnavailable,
  E_AGENT_REFUSED: ExitCode.accessDenied,
  E_AGENT_OFFLINE: ExitCode.failure,
  E_AGENT_LOST: ExitCode.failure,
  E_REPO_FORMAT_UNSUPPORTED: ExitCode.formatUnsupported,
};

/** The exit code for an error code. */
export function exitCodeOf(code: ErrorCode): number {
  return BY_CODE[code];
}
