/**
 * What a VM backup is asked to do and what it reports, as plain data: `coffer backup` builds a
 * {@link VmBackupRequest} from its options, the server stores a {@link VmBackupSpec} per task
 * (the request and the repository's location) and sends it to a worker process as JSON; both
 * get a {@link VmBackupResult} back (run-vm-backup.ts).
 */
import type { Backend, ChangeTrackingRecord, ConsistencyRecord, LeaseInfo, Repository } from '../repo/index.js';
import type { Bottleneck, TimeBreakdown } from './backup-meter.js';
import type { DiskFormat } from '../disk/index.js';

/** Shell commands run just before and just after a running VM's capture (capture-hook.ts). */
export interface CaptureHookCommands {
  /** Runs before the capture; failing, it refuses the backup (E_SOURCE_UNREADABLE). */
  readonly pre?: string;
  /** Runs after the capture, whether it succeeded or not; failing, it is a warning. */
  readonly post?: string;
}

/** Where a VM's disks come from. */
export type VmBackupSource =
  /**
   * Disk image files or block devices, any format Coffer reads; `imageSnapshot` reads qcow2
   * internal snapshots; `sourceFormat` reads every image as that format, not probed (`raw`
   * for raw disks and volumes whose guests could write an image header at their start). `changedRanges`: one list per image, in order (a file or an NBD
   * dirty-bitmap URI, changed-ranges-input.ts in source/), of what changed since the parent
   * (the request's `base`, else the VM's latest snapshot): only those ranges are read.
   */
  | { readonly images: readonly string[]; readonly imageSnapshot?: string; readonly sourceFormat?: DiskFormat; readonly changedRanges?: readonly string[] }
  /**
   * A running QEMU VM's monitor socket (or `HOST:PORT`); its guest agent socket for freezing
   * (default: the one QEMU's `org.qemu.guest_agent.0` port leads to), `freeze: false` not to
   * freeze, and how long a freeze may take (milliseconds; default guest-freeze.ts's).
   * `scratch`: where the fleecing overlays grow, and the free space kept there (see
   * source/scratch-space.ts; default: the system's temporary folder).
   */
  | { readonly qmp: string; readonly guestAgent?: string; readonly freeze?: boolean; readonly freezeTimeoutMs?: number; readonly hooks?: CaptureHookCommands; readonly scratch?: ScratchSpec }
  /** A libvirt domain and the connection URI (default: libvirt's own default); libvirt freezes through the domain's agent. `scratch`: where libvirt's scratch images go. */
  | { readonly libvirt: { readonly uri?: string; readonly domain: string; readonly freeze?: boolean }; readonly hooks?: CaptureHookCommands; readonly scratch?: ScratchSpec }
  /**
   * A machine running `coffer agent` (docs/agent.md): the agent backs up these files itself,
   * into the repository through the server; never opened here.
   */
  | { readonly agent: string; readonly files: { readonly paths: readonly string[]; readonly exclude?: readonly string[] } };

/** A live backup's scratch folder (its parent: the VM's own folder is made inside), and the free space to keep there (bytes). */
export interface ScratchSpec {
  readonly dir?: string;
  readonly minFreeBytes?: number;
}

/** What to back up and how. Plain data. */
export interface VmBackupRequest {
  readonly vm: string;
  /** The hypervisor the VM runs on, recorded as the snapshot's hostname (default: this machine's). */
  readonly host?: string;
  readonly source: VmBackupSource;
  readonly tags?: readonly string[];
  /** The job that asked for it (recorded as a tag `job:NAME`). */
  readonly job?: string;
  /** The capture time to record (ISO 8601; default: when the backup starts). */
  readonly time?: string;
  /** The snapshot (id or unique prefix) to compare with instead of the VM's latest: the base of `changedRanges`. */
  readonly base?: string;
  /**
   * Hash this fraction (0..1] of the blocks a source's change tracking (dirty bitmap, given
   * ranges) calls unchanged, compare with the parent, and read a disk in full on a mismatch.
   */
  readonly verifyUnchanged?: number;
  /** Codec worker threads (default: every core). */
  readonly threads?: number;
}

/** Where a repository is and how to unlock it, without a terminal. */
export interface RepositoryLocation {
  /** A local path, an `s3:https://HOST/BUCKET/PREFIX` location or an `https://HOST:PORT/REPO` repository server. */
  readonly url: string;
  /** A file holding the passphrase (its trailing newline is not part of it); none for an unencrypted repository. */
  readonly passphraseFile?: string;
}

/** A server task's backup: the request and the repository. Plain data: it crosses process boundaries as JSON. */
export interface VmBackupSpec extends VmBackupRequest {
  readonly repository: RepositoryLocation;
}

/**
 * Opens the repository a backup writes to, its backend first wrapped by `wrapBackend` (the
 * backup's meter and throttle). The caller owns how: prompts, URL dispatch, limits.
 */
export type RepositoryOpener = (wrapBackend: (backend: Backend) => Backend) => Promise<Repository>;

/** Something a backup met that is worth telling (its caller prints or logs it). */
export type VmBackupEvent =
  /** A prune holds the repository: the backup waits for it to end. */
  | { readonly type: 'waiting-for-prune'; readonly holders: readonly LeaseInfo[] }
  /** Output of a capture hook, as it comes. */
  | { readonly type: 'hook-output'; readonly data: Buffer }
  /** The backup goes on, but something is not as asked; also listed in the result's `warnings`. */
  | { readonly type: 'warning'; readonly about: 'thaw' | 'post-capture-hook' | 'skipped-disk' | 'probed-device'; readonly message: string };

/** The figures of one VM backup (issue #8, "per task and per VM"), and what its snapshot records. */
export interface VmBackupResult {
  snapshot: string;
  vm: string;
  /** The hostname the snapshot records. */
  host: string;
  job?: string;
  started: string;
  ended: string;
  /** The whole run: opening the repository and the source included. */
  durationMs: number;
  bytesLogical: number;
  bytesRead: number;
  /** Of the bytes read, those whose blocks matched their fingerprint of the last backups: not hashed (block-fingerprints.ts). */
  bytesMatched?: number;
  bytesNew: number;
  bytesStored: number;
  /** Bytes read from the source per second of the run. */
  throughput: number;
  /** New bytes over logical bytes (0..1): how much of the VM changed since the parent. */
  changeRate: number;
  mode: 'full' | 'incremental';
  /** Why full or incremental, per disk when they differ. */
  modeReason: string;
  consistency: 'application' | 'crash' | 'unknown';
  consistencyReason?: string;
  warnings: string[];
  bottleneck: Bottleneck;
  time: Omit<TimeBreakdown, 'bottleneck'>;
  /** The snapshot it was compared with, null for none. */
  parent: string | null;
  /** The capture time the snapshot records. */
  snapshotTime: string;
  /** The backup proper as the snapshot records it (`stats.durationMs`: from the first read to the manifest). */
  backupMs: number;
  /** Each disk backed up, and how its unchanged ranges were known. */
  disks: { name: string; changeTracking?: ChangeTrackingRecord }[];
  /** The VM's disks left out (a libvirt domain's disks that cannot be read), and why. */
  skipped: { name: string; reason: string }[];
  /** The snapshot's consistency record, as `coffer snapshots` shows it (absent for image files). */
  consistencyRecord?: ConsistencyRecord;
  /** A repository with Object Lock: until when the snapshot is locked, and what locking what it reuses took. */
  objectLock?: { lockedUntil: string; checked: number; lookedUp: number; extended: number; durationMs: number };
}
