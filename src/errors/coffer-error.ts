/**
 * Every code Coffer throws, with the situation it names. Codes are part of the public
 * interface (scripts and the future REST API see them): never rename one.
 */
export const ERROR_CODES = {
  /** The command line is wrong (unknown option, missing argument, bad value). */
  E_USAGE: 'the command line is wrong',
  /** No passphrase was given and none can be asked for (no TTY). */
  E_NO_PASSPHRASE: 'a passphrase is needed',
  /** No key of the repository opens with the passphrase given. */
  E_WRONG_PASSPHRASE: 'the passphrase opens no key of the repository',
  /** The path holds no Coffer repository. */
  E_REPO_NOT_FOUND: 'no repository there',
  /** `init` on a location that already holds a repository or other files. */
  E_REPO_EXISTS: 'a repository or other files are already there',
  /** The repository's config or keys cannot be read or parsed. */
  E_REPO_DAMAGED: 'the repository is damaged',
  /** The repository was written by a newer Coffer (format version unknown). */
  E_REPO_VERSION: 'the repository format is newer than this Coffer',
  /** A stored object failed its integrity check (authentication tag or hash). */
  E_CORRUPT_OBJECT: 'a stored object is corrupt',
  /** A stored object that something refers to is missing. */
  E_MISSING_OBJECT: 'a stored object is missing',
  /** No snapshot matches the id, prefix or `latest` given, or a prefix is ambiguous. */
  E_SNAPSHOT_NOT_FOUND: 'no such snapshot',
  /** The snapshot is protected (`coffer protect`): nothing removes it until it is unprotected. */
  E_SNAPSHOT_PROTECTED: 'the snapshot is protected',
  /** The snapshot is within its Object Lock retention (`coffer init --lock-days`): it cannot be forgotten before the date given. */
  E_SNAPSHOT_LOCKED: 'the snapshot is locked',
  /** An object under Object Lock retention cannot be deleted (or its retention shortened) yet. */
  E_OBJECT_LOCKED: 'the object is locked',
  /** The snapshot has no disk with that name or number. */
  E_DISK_NOT_FOUND: 'no such disk in the snapshot',
  /** The source image or device does not exist or cannot be opened. */
  E_SOURCE_UNREADABLE: 'the source cannot be read',
  /** The source got shorter while it was read. */
  E_SOURCE_SHRUNK: 'the source shrank while it was read',
  /** A disk image is damaged, truncated, or contradicts its own format. */
  E_IMAGE_INVALID: 'the disk image is invalid',
  /** A disk image uses a format or feature Coffer does not read (encryption, external data…). */
  E_UNSUPPORTED_FORMAT: 'the disk image format or feature is not supported',
  /** The restore target cannot be written, exists already, or is too small. */
  E_TARGET_UNWRITABLE: 'the restore target cannot be written',
  /** The storage the repository or the target lives on is full. */
  E_NO_SPACE: 'no space left on the storage',
  /** A backend (disk, object store) failed in a way not covered above. */
  E_BACKEND_IO: 'the storage failed',
  /** The operation was interrupted (Ctrl-C, a signal, an abort). */
  E_INTERRUPTED: 'interrupted',
  /** A backup hook command failed or ran past its timeout (a pre-backup hook stops the backup). */
  E_HOOK_FAILED: 'a hook command failed',
  /** Verification found missing or corrupt data. */
  E_VERIFY_FAILED: 'verification found damage',
  /** A key operation that would lock everyone out (removing the last or the current key). */
  E_KEY_REFUSED: 'the key operation was refused',
  /** No volume (partition, logical volume, whole disk) of that name in the snapshot. */
  E_VOLUME_NOT_FOUND: 'no such volume',
  /** The volume is encrypted (LUKS, BitLocker): its files cannot be read without its key. */
  E_VOLUME_ENCRYPTED: 'the volume is encrypted',
  /** The volume holds no filesystem Coffer reads, or one with a feature it does not read. */
  E_FS_UNSUPPORTED: 'the filesystem or one of its features is not supported',
  /** A filesystem structure is damaged or contradicts itself (a guest's disk is untrusted input). */
  E_FS_CORRUPT: 'the filesystem is damaged',
  /** No file or directory at that path in the filesystem, or a path through a non-directory. */
  E_PATH_NOT_FOUND: 'no such file or directory',
  /** A network peer (QEMU's monitor, an NBD server or client) sent something the protocol forbids. */
  E_PROTOCOL: 'the peer broke the protocol',
  /** A connection to a peer could not be made or was lost (requests unanswered), or an address could not be listened on. */
  E_CONNECTION_FAILED: 'the connection to the peer failed',
  /** A peer did not answer within the time allowed. */
  E_TIMEOUT: 'the peer did not answer in time',
  /** QEMU refused a QMP command; the error carries QEMU's error class and description. */
  E_QMP_ERROR: 'QEMU refused the command',
  /** An NBD server refused a request or an option (no such export, an I/O error on its side…). */
  E_NBD_ERROR: 'the NBD server reported an error',
  /** libvirt could not be reached (no daemon, bad URI, no virsh) or refused a command. */
  E_LIBVIRT_ERROR: 'libvirt failed or refused the command',
  /** libvirt knows no domain of that name. */
  E_DOMAIN_NOT_FOUND: 'no such libvirt domain',
  /** A backup and a prune cannot run together, and the other one did not end in time. */
  E_REPO_BUSY: 'the repository is busy',
  /** A backup's lease was removed or expired while it ran (a prune presumed it dead). */
  E_LEASE_LOST: 'the lease on the repository was lost',
  /** A tape volume (or tape file) is not a Coffer tape, is of another tape set, or contradicts its own index. */
  E_TAPE_INVALID: 'the tape is not a valid Coffer tape',
  /** A tape set is incomplete: a volume (sequence number) was not given. */
  E_TAPE_VOLUME_MISSING: 'a volume of the tape set is missing',
  /** The service's state database cannot be opened or migrated (locked, damaged, unreachable). */
  E_STATE_UNAVAILABLE: 'the state database cannot be used',
  /** The service's state database was migrated by a newer Coffer than this one. */
  E_STATE_TOO_NEW: 'the state database is newer than this Coffer',
  /** A repository server refused the request: no token, a wrong or expired one, or one not allowed to do that (append-only). */
  E_ACCESS_DENIED: 'the repository server refused access',
  /** A repository server's TLS certificate is not the one pinned, or not signed by a trusted CA. */
  E_SERVER_UNTRUSTED: 'the repository server\'s certificate is not trusted',
  /** No task or run with that id (server tasks). */
  E_TASK_NOT_FOUND: 'no such task or run',
  /** A task's worker process died without reporting (a signal, out of memory, a crash). */
  E_WORKER_FAILED: 'the task\'s worker process failed',
  /** A task did not start because its job's backup window closed first; it goes first next time. */
  E_WINDOW_CLOSED: 'the backup window closed before the task started',
  /** The service's configuration file (or a change sent through the API) is invalid: `file:line: key: message`. */
  E_CONFIG_INVALID: 'the service configuration is invalid',
  /** The service cannot listen on its address (in use, not local, or not allowed). */
  E_ADDRESS_IN_USE: 'the address cannot be listened on',
  /** `coffer server` refused an agent's token (unknown, expired or revoked), or the agent's name is not the token's. */
  E_AGENT_REFUSED: 'the server refused the agent',
  /** A task for an agent could not start: the agent was offline until its window closed (or its wait ran out). */
  E_AGENT_OFFLINE: 'the agent was offline',
  /** An agent stopped answering (killed, network lost) while it ran a task; nothing it had not finished was saved. */
  E_AGENT_LOST: 'the agent stopped answering during the task',
  /** The operation does not support the repository's format yet (format 2, packs: sync of a file snapshot into or out of it). */
  E_REPO_FORMAT_UNSUPPORTED: 'the operation does not support this repository format yet',
} as const;

/** A stable error code, see {@link ERROR_CODES}. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** What an error is about, so a human (or a script) can find it. */
export interface ErrorSubject {
  repository?: string;
  path?: string;
  object?: string;
  snapshot?: string;
  offset?: number;
}

/**
 * The base of every error a user can cause. `message` is one line a human can act on;
 * `subject` names the object concerned; `cause` keeps the underlying error.
 */
export class CofferError extends Error {
  override readonly name = 'CofferError';
  readonly code: ErrorCode;
  readonly subject: ErrorSubject;

  constructor(code: ErrorCode, message: string, options: { subject?: ErrorSubject; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.subject = options.subject ?? {};
  }
}

/** True when `error` is a {@link CofferError}, optionally with the given code. */
export function isCofferError(error: unknown, code?: ErrorCode): error is CofferError {
  return error instanceof CofferError && (code === undefined || error.code === code);
}
