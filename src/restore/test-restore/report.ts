/**
 * What a test restore found, as one JSON document: printed by `coffer test-restore`, stored
 * with the snapshot, and read back by `coffer snapshots`. Plain JSON (absent = omitted).
 */

/** One disk of the snapshot read back in full through the repository. */
export interface DiskCheck {
  name: string;
  size: number;
  /** Bytes read back (zero ranges are known from the index and not fetched). */
  bytesRead: number;
  /**
   * Ranges that could not be read, with the reason (a missing or corrupt chunk) and, where
   * the filesystems tell, the files holding bytes there (`ranges`: their bytes in all the
   * disk's unreadable blocks; `metadata`: their own inode or record is there).
   */
  unreadable: { offset: number; length: number; error: string; files?: { volume: string; path: string; metadata?: string[]; ranges: { offset: number; length: number }[] }[] }[];
  /** What the damage does to files that could not be told (a volume without a readable filesystem, an unreadable folder). */
  filesUnknown?: string[];
}

/** The result of a filesystem's own checker, run read-only on a temporary copy of the volume. */
export interface CheckerResult {
  /** The command as run, without the file name, e.g. `e2fsck -fn`. */
  command: string;
  /** Null when it was not run (`skipped` says why). */
  exitCode: number | null;
  passed: boolean;
  /** Why the checker was not run (tool not installed, `--no-fsck`, no room for the copy). */
  skipped?: string;
  /** The last lines it printed (at most 40). */
  output?: string;
}

/** One volume (partition, logical volume, whole disk): its files walked and read. */
export interface VolumeCheck {
  disk: string;
  name: string;
  /** `ext4`, `ntfs`…, absent when no filesystem Coffer reads is on the volume. */
  filesystem?: string;
  label?: string;
  directories: number;
  files: number;
  symlinks: number;
  /** File content bytes read (holes are not read; all-zero pieces are not counted). */
  bytesRead: number;
  /** Why the volume's content was not checked (encrypted, no known filesystem). */
  notChecked?: string;
  /** Damage found: one line each, at most {@link MAX_PROBLEMS_PER_VOLUME}. */
  problems: string[];
  /** How many problems there were in all (more than `problems` holds when capped). */
  problemCount: number;
  checker?: CheckerResult;
}

/** The VM booted from its backup (`--boot`). */
export interface BootResult {
  passed: boolean;
  /** The text waited for on the serial console. */
  expect: string;
  accel: 'kvm' | 'tcg';
  bus: string;
  /** The QEMU machine type it ran on. */
  machine: string;
  /** The firmware it started (absent in results stored before 2026-11-30, all BIOS). */
  firmware?: {
    kind: 'bios' | 'uefi';
    /** Why this firmware: asked, the VM's definition, or what its first disk holds. */
    why: string;
    /** UEFI: the QEMU firmware descriptor's description, and its code file. */
    description?: string;
    code?: string;
    secureBoot?: boolean;
    /** UEFI: the VM's own variable store came from the backup (else an empty one). */
    varsFromBackup?: boolean;
  };
  /** Seconds from QEMU's start to the text (when it appeared). */
  secondsToText?: number;
  /** Why it failed. */
  reason?: string;
  /** The last lines of the serial console. */
  serialTail: string;
  durationMs: number;
}

/** A test restore of one snapshot. */
export interface TestRestoreReport {
  snapshot: string;
  vm: string;
  startedAt: string;
  durationMs: number;
  passed: boolean;
  /** Why it failed, one line each (empty when it passed). */
  failures: string[];
  disks: DiskCheck[];
  volumes: VolumeCheck[];
  /** Volume-table notes (a GPT read from its backup header, a missing LVM PV…). */
  warnings: string[];
  /** Present when the VM was booted from the backup. */
  boot?: BootResult;
}

export const MAX_PROBLEMS_PER_VOLUME = 50;
