import { CofferError } from '../../errors/index.js';
import { findAffectedFiles, mergeRanges, type AffectedFile, type ByteRange } from '../../fs/index.js';
import type { Repository, Snapshot } from '../../repo/index.js';
import { volumeRangesOnDisk } from '../../volume/index.js';
import { findDisk } from '../restore-snapshot.js';
import { SnapshotFiles } from './snapshot-files.js';

/** What damage to a disk does to one volume on it, as far as its filesystem tells. */
export interface VolumeDamage {
  /** The volume's name (`p1`, `vg0/root`, `disk`). */
  volume: string;
  /** `ext4`, `ntfs`… when a filesystem Coffer reads was opened. */
  filesystem?: string;
  /** The damaged bytes, as ranges of the volume. */
  ranges: ByteRange[];
  /**
   * Files, directories and links whose content or own metadata lies in those ranges; their
   * `hits` are indices into the disk ranges given ({@link AffectedFilesOptions.ranges}).
   */
  files: AffectedFile[];
  /** Folders and entries that could not be read: what is below them is unknown. */
  unknown: { path: string; error: string }[];
  /** The walk stopped at its limit: more files may be affected. */
  truncated: boolean;
  /** Why no file can be named (no filesystem Coffer reads, encrypted, the filesystem itself damaged). */
  problem?: string;
}

/** Options of {@link affectedFiles}. */
export interface AffectedFilesOptions {
  /** The disk's name (or number) in the snapshot. */
  disk: string;
  /** Damaged byte ranges of that disk. */
  ranges: readonly ByteRange[];
  /** Stop each volume's walk after this many affected files (default: fs DEFAULT_MAX_AFFECTED_FILES). */
  maxFiles?: number;
  signal?: AbortSignal;
}

/**
 * Which files damaged ranges of a snapshot's disk touch: the ranges are mapped to each volume
 * that holds some of them (a partition by its offset, an LVM logical volume back through its
 * segments and stripes, also when the LV spans disks), then each volume's filesystem is
 * walked ({@link findAffectedFiles}): only partition tables, LVM metadata and filesystem
 * metadata are read, never file content. Volumes the ranges miss are left out; so is damage
 * outside every volume (partition table, gaps, LVM metadata areas). Damage is reported,
 * not thrown: only a bad disk name (`E_DISK_NOT_FOUND`), an interruption or a failure of the
 * repository itself throw.
 */
export async function affectedFiles(files: SnapshotFiles, options: AffectedFilesOptions): Promise<VolumeDamage[]> {
  const record = findDisk(files.snapshot, options.disk);
  const diskIndex = files.snapshot.disks.indexOf(record);
  const out: VolumeDamage[] = [];
  for (const v of files.volumes) {
    if (v.volume.lvmPhysicalVolume !== undefined || v.volume.typeDescription === 'extended') continue; // their LVs / logical partitions are mapped instead
    const pieces = options.ranges.flatMap((r, index) => volumeRangesOnDisk(v.volume, diskIndex, r).map((p) => ({ offset: p.volumeOffset, length: p.length, index })));
    if (pieces.length === 0) continue;
    const damage: VolumeDamage = { volume: v.volume.name, ranges: mergeRanges(pieces), files: [], unknown: [], truncated: false };
    out.push(damage);
    try {
      await files.probe(v);
    } catch (error) {
      if (!(error instanceof CofferError) || error.code === 'E_INTERRUPTED') throw error;
      damage.problem = error.message;
      continue;
    }
    if (v.problem !== undefined) {
      damage.problem = v.problem.message;
      continue;
    }
    if (v.filesystem === undefined) {
      damage.problem = 'no filesystem Coffer reads is on it';
      continue;
    }
    damage.filesystem = v.filesystem.type;
    try {
      const found = await findAffectedFiles(v.filesystem, pieces, {
        ...(options.maxFiles !== undefined ? { maxFiles: options.maxFiles } : {}),
        ...(options.signal !== undefined ? { signal: options.signal } : {}),
      });
      // Each piece came from one of the disk ranges given: hits name those.
      damage.files = found.files.map((f) => ({ ...f, hits: [...new Set(f.hits.map((h) => pieces[h]!.index))].sort((a, b) => a - b) }));
      damage.unknown = found.unknown;
      damage.truncated = found.truncated;
    } catch (error) {
      if (!(error instanceof CofferError) || error.code === 'E_INTERRUPTED') throw error;
      damage.problem = error.message;
    }
  }
  return out;
}

/**
 * {@link affectedFiles} for one snapshot, opening and closing its disks. Also throws what
 * listing the volumes throws (a partition table or LVM label in a missing chunk).
 */
export async function affectedFilesOfSnapshot(repo: Repository, snapshot: Snapshot, options: AffectedFilesOptions): Promise<VolumeDamage[]> {
  findDisk(snapshot, options.disk);
  const files = await SnapshotFiles.open(repo, snapshot);
  try {
    return await affectedFiles(files, options);
  } finally {
    await files.close();
  }
}
