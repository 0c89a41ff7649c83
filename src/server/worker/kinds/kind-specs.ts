/**
 * What each task kind is given (the task's `spec`, JSON in the state database and over IPC).
 * The routes build these from a validated request and the configuration; the worker trusts
 * them as the runner's own. A repository travels as its location and passphrase file, never
 * as a passphrase.
 */
import type { TargetFormat } from '../../../disk/index.js';
import type { RetentionPolicy } from '../../../repo/index.js';

/** A configured repository as a worker opens it. */
export interface RepositoryRef {
  /** Its name in the configuration (for messages). */
  readonly name: string;
  /** A local path (or `local:PATH`) or an `s3:` location. */
  readonly url: string;
  /** A file holding the passphrase; none for an unencrypted repository. */
  readonly passphraseFile?: string;
}

/** A snapshot's disks to images (`to`: a file for one disk, a folder for several), or as a clone VM (`asVm`). */
export interface RestoreSpec {
  readonly repository: RepositoryRef;
  /** A full snapshot id (the route resolved it). */
  readonly snapshot: string;
  readonly to: string;
  readonly format: TargetFormat;
  /** One disk by name or number; all when absent. */
  readonly disk?: string;
  readonly overwrite: boolean;
  /** Restore as a new VM of this name (new UUID and MACs), disks and definition in `to`. */
  readonly asVm?: string;
}

/** A verification subset as the API writes it: `N/M` or `P%`. */
export interface VerifySpec {
  readonly repository: RepositoryRef;
  readonly readData: boolean;
  readonly subset?: string;
}

export interface PruneSpec {
  readonly repository: RepositoryRef;
  readonly dryRun: boolean;
  /** How long to wait for running backups (their leases), ms. */
  readonly waitMs: number;
}

/** Removes the snapshots a retention policy does not keep (protected ones stay), then prunes if asked. */
export interface ForgetSpec {
  readonly repository: RepositoryRef;
  readonly policy: RetentionPolicy;
  readonly vm?: string;
  readonly dryRun: boolean;
  readonly prune: boolean;
}

/** Copies the snapshots `to` lacks. */
export interface SyncSpec {
  readonly repository: RepositoryRef;
  readonly to: RepositoryRef;
  readonly vm?: string;
  /** Only snapshots at or after this time (ISO 8601). */
  readonly since?: string;
}

export interface TestRestoreSpec {
  readonly repository: RepositoryRef;
  readonly snapshot: string;
  readonly fsck: boolean;
  /** Also boot the VM from the backup, isolated (restore/test-restore/boot-check.ts), and wait for `expect` (default `login:`) on its serial console. */
  readonly boot?: TestRestoreBoot;
}

/** A test restore's boot check, as a job's `test-restore.boot` asks for it. */
export interface TestRestoreBoot {
  readonly expect?: string;
  readonly timeoutMs?: number;
  /** Default `auto`: KVM when /dev/kvm opens, else TCG. */
  readonly accel?: 'kvm' | 'tcg' | 'auto';
}

/** Serves a snapshot's disks over NBD until cancelled; writable to an overlay when `overlayDir` is given. */
export interface InstantRecoverySpec {
  readonly repository: RepositoryRef;
  readonly snapshot: string;
  /** The NBD listener: TCP host and port (0: any free port). */
  readonly listen: { readonly host: string; readonly port: number };
  /** Writes go to files in this folder (the repository is never modified); read-only without. */
  readonly overlayDir?: string;
}
