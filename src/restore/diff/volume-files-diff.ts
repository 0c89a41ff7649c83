import { CofferError } from '../../errors/index.js';
import { mergeRanges, type ByteRange, type Filesystem, type FsNode } from '../../fs/index.js';
import type { Repository, Snapshot } from '../../repo/index.js';
import { volumeRangesOnDisk } from '../../volume/index.js';
import { SnapshotFiles, type SnapshotVolume } from '../files/snapshot-files.js';
import { findDisk } from '../restore-snapshot.js';
import { walkChanges, type ChangeCounts, type DiffProblem, type PathChange } from './change-walk.js';
import { diskChanges } from './disk-changes.js';
import type { DisksDiff } from './disks-diff.js';
import { FilesystemComparison, filesystemSide, type ContentChecks } from './filesystem-comparison.js';

/** A volume found in either snapshot, as a comparison starts on it. */
export interface VolumeInfo {
  /** `p1`, `vg0/root`, `disk`. */
  volume: string;
  /** The disk it lies on (a logical volume: its first segment's). */
  disk: string;
  /**
   * `added`/`removed`: on one side only (not walked); `unchanged`: no byte of it differs (not
   * walked); `compared`: both filesystems walked; `not compared`: see `problem`.
   */
  change: 'added' | 'removed' | 'unchanged' | 'compared' | 'not compared';
  /** The filesystem in the second snapshot (the first for `removed`), when one Coffer reads is there. */
  filesystem?: string;
  /** The bytes of the volume that differ between the snapshots (all of it when it moved on its disks). */
  changedBytes: number;
  /** Why its files were not compared: no filesystem Coffer reads, encrypted, damaged. */
  problem?: string;
}

/** A volume's comparison, once done. */
export interface VolumeFilesDiff extends VolumeInfo {
  counts?: ChangeCounts;
  /** Sizes of the files added and removed. */
  bytesAdded: number;
  bytesRemoved: number;
  checks?: ContentChecks;
  /** Folders and entries that could not be read or compared: what is below them is unknown. */
  problems: DiffProblem[];
}

/** Where {@link diffSnapshotVolumes} reports, volume by volume, as it goes. */
export interface VolumeDiffSink {
  start(volume: VolumeInfo): void | Promise<void>;
  change(change: PathChange): void | Promise<void>;
  end(result: VolumeFilesDiff): void | Promise<void>;
}

/**
 * The files of each volume of two VM snapshots compared: volumes are found on both as
 * `coffer files` finds them (partition tables, LVM) and matched by name (a partition also
 * by its disk). A volume none of whose bytes changed is unchanged without being opened; the
 * others have both filesystems walked side by side ({@link walkChanges}), each pair of nodes
 * compared by {@link FilesystemComparison} against the volume's changed ranges, which come
 * from the disks' changed ranges (`disks`, the disk-level comparison; disks it left out
 * with `--disk` are compared here when a logical volume spans them). Memory: one listing per
 * folder level on each side; no tree is held whole.
 */
export async function diffSnapshotVolumes(
  repo: Repository,
  a: Snapshot,
  b: Snapshot,
  disks: DisksDiff,
  options: { disk?: string; sink: VolumeDiffSink; signal?: AbortSignal },
): Promise<VolumeFilesDiff[]> {
  const filesA = await SnapshotFiles.open(repo, a);
  const filesB = await SnapshotFiles.open(repo, b);
  try {
    const onlyDisk = options.disk === undefined ? undefined : (b.disks.find((d) => d.name === options.disk) ?? a.disks.find((d) => d.name === options.disk) ?? findDisk(b, options.disk)).name;
    const volumesA = comparable(filesA, onlyDisk);
    const volumesB = comparable(filesB, onlyDisk);
    const changedRanges = changedRangesOf(repo, a, b, disks, options.signal);
    const results: VolumeFilesDiff[] = [];
    const report = async (info: VolumeInfo, done: Omit<VolumeFilesDiff, keyof VolumeInfo> = { bytesAdded: 0, bytesRemoved: 0, problems: [] }): Promise<void> => {
      await options.sink.start(info);
      const result = { ...info, ...done };
      await options.sink.end(result);
      results.push(result);
    };
    for (const [key, vB] of volumesB) {
      const vA = volumesA.get(key);
      const base = { volume: vB.volume.name, disk: vB.diskName };
      if (vA === undefined) {
        await filesB.probe(vB).catch(() => {});
        await report({ ...base, change: 'added', changedBytes: vB.volume.size, ...(vB.filesystem !== undefined ? { filesystem: vB.filesystem.type } : {}) });
        continue;
      }
      const changed = await volumeChanges(vA, vB, filesA, filesB, changedRanges);
      const changedBytes = changed.reduce((sum, r) => sum + r.length, 0);
      if (changed.length === 0) {
        await report({ ...base, change: 'unchanged', changedBytes });
        continue;
      }
      const opened = await openBoth(filesA, vA, filesB, vB);
      const roots = typeof opened === 'string' ? opened : await rootsOf(opened.fsA, opened.fsB);
      if (typeof opened === 'string' || typeof roots === 'string') {
        await report({ ...base, change: 'not compared', changedBytes, problem: typeof opened === 'string' ? opened : (roots as string) });
        continue;
      }
      const { fsA, fsB } = opened;
      const info: VolumeInfo = { ...base, change: 'compared', changedBytes, filesystem: fsB.type };
      await options.sink.start(info);
      const result: VolumeFilesDiff = { ...info, bytesAdded: 0, bytesRemoved: 0, problems: [] };
      const onProblem = (p: DiffProblem) => result.problems.push(p);
      const comparison = new FilesystemComparison(fsA, fsB, changed, options.signal);
      result.counts = await walkChanges(
        { a: filesystemSide(fsA, onProblem), b: filesystemSide(fsB, onProblem) },
        roots,
        comparison,
        {
          change: async (change: PathChange, x: FsNode | undefined, y: FsNode | undefined) => {
            if ((change.change === '-' || change.change === 'T') && x?.type === 'file') result.bytesRemoved += x.size;
            if ((change.change === '+' || change.change === 'T') && y?.type === 'file') result.bytesAdded += y.size;
            await options.sink.change(change);
          },
          problem: onProblem,
        },
        options.signal !== undefined ? { signal: options.signal } : {},
      );
      result.checks = comparison.checks;
      await options.sink.end(result);
      results.push(result);
    }
    for (const [key, vA] of volumesA) {
      if (volumesB.has(key)) continue;
      await filesA.probe(vA).catch(() => {});
      await report({ volume: vA.volume.name, disk: vA.diskName, change: 'removed', changedBytes: vA.volume.size, ...(vA.filesystem !== undefined ? { filesystem: vA.filesystem.type } : {}) });
    }
    return results;
  } finally {
    await filesA.close();
    await filesB.close();
  }
}

/** The volumes that may hold a filesystem (not LVM PVs nor extended partitions), by name; with `disk`, those on it. */
function comparable(files: SnapshotFiles, disk: string | undefined): Map<string, SnapshotVolume> {
  const out = new Map<string, SnapshotVolume>();
  const diskIndex = disk === undefined ? undefined : files.snapshot.disks.findIndex((d) => d.name === disk);
  for (const v of files.volumes) {
    if (v.volume.lvmPhysicalVolume !== undefined || v.volume.typeDescription === 'extended') continue;
    const onDisk = (index: number) => diskIndex === undefined || index === diskIndex;
    const lv = v.volume.kind === 'logical-volume';
    if (lv ? !(v.volume.segments ?? []).some((s) => s.stripes.some((st) => 'disk' in st && onDisk(st.disk))) : !onDisk(v.volume.disk)) continue;
    out.set(lv ? v.volume.name : `${v.diskName}:${v.volume.name}`, v);
  }
  return out;
}

/** Each disk's changed ranges by name, from the disk-level comparison or, for a disk it left out, compared now. */
function changedRangesOf(repo: Repository, a: Snapshot, b: Snapshot, disks: DisksDiff, signal: AbortSignal | undefined): (disk: string) => Promise<ByteRange[]> {
  const known = new Map<string, Promise<ByteRange[]>>();
  return (name) => {
    let ranges = known.get(name);
    if (ranges === undefined) {
      const done = disks.disks.find((d) => d.name === name);
      const diskA = a.disks.find((d) => d.name === name);
      const diskB = b.disks.find((d) => d.name === name);
      if (done !== undefined && 'ranges' in done) ranges = Promise.resolve(done.ranges);
      else if (diskA !== undefined && diskB !== undefined) ranges = diskChanges(repo, diskA, diskB, signal !== undefined ? { signal } : {}).then((c) => c.ranges);
      else ranges = Promise.resolve([{ offset: 0, length: Math.max(diskA?.size ?? 0, diskB?.size ?? 0) }]); // a disk on one side only: all of it
      known.set(name, ranges);
    }
    return ranges;
  };
}

/**
 * The byte ranges of a volume that differ between the snapshots: its disks' changed ranges
 * mapped into it. A volume that lies elsewhere on its disks in the two snapshots (moved, or an
 * LV whose segments changed) holds other disk bytes at the same offsets: all of it counts as
 * changed; so does what a grown volume added.
 */
async function volumeChanges(vA: SnapshotVolume, vB: SnapshotVolume, filesA: SnapshotFiles, filesB: SnapshotFiles, rangesOf: (disk: string) => Promise<ByteRange[]>): Promise<ByteRange[]> {
  const whole = Math.max(vA.volume.size, vB.volume.size);
  if (placement(vA, filesA) !== placement(vB, filesB)) return [{ offset: 0, length: whole }];
  const pieces: ByteRange[] = [];
  for (const [index, disk] of filesB.snapshot.disks.entries()) {
    const onIt = vB.volume.kind === 'logical-volume' ? (vB.volume.segments ?? []).some((s) => s.stripes.some((st) => 'disk' in st && st.disk === index)) : vB.volume.disk === index;
    if (!onIt) continue;
    for (const range of await rangesOf(disk.name)) {
      for (const piece of volumeRangesOnDisk(vB.volume, index, range)) pieces.push({ offset: piece.volumeOffset, length: piece.length });
    }
  }
  const shorter = Math.min(vA.volume.size, vB.volume.size);
  if (whole > shorter) pieces.push({ offset: shorter, length: whole - shorter });
  return mergeRanges(pieces);
}

/** Where a volume's bytes lie on the snapshot's disks, named by disk name (disk numbers may differ between snapshots). */
function placement(v: SnapshotVolume, files: SnapshotFiles): string {
  const diskName = (index: number) => files.snapshot.disks[index]?.name ?? `#${index}`;
  if (v.volume.kind !== 'logical-volume') return `${diskName(v.volume.disk)}@${v.volume.offset ?? '?'}`;
  return JSON.stringify((v.volume.segments ?? []).map((s) => [s.start, s.length, s.stripeSize, s.stripes.map((st) => ('disk' in st ? [diskName(st.disk), st.offset] : st.missing))]));
}

/** Both volumes' filesystems, or why they cannot be compared. */
async function openBoth(filesA: SnapshotFiles, vA: SnapshotVolume, filesB: SnapshotFiles, vB: SnapshotVolume): Promise<{ fsA: Filesystem; fsB: Filesystem } | string> {
  for (const [files, v, which] of [[filesA, vA, 'first'], [filesB, vB, 'second']] as const) {
    try {
      await files.probe(v);
    } catch (error) {
      if (!(error instanceof CofferError) || error.code === 'E_INTERRUPTED') throw error;
      return `in the ${which} snapshot: ${error.message}`;
    }
    if (v.problem !== undefined) return `in the ${which} snapshot: ${v.problem.message}`;
  }
  if (vA.filesystem === undefined) return 'in the first snapshot it holds no filesystem Coffer reads';
  if (vB.filesystem === undefined) return 'in the second snapshot it holds no filesystem Coffer reads';
  return { fsA: vA.filesystem, fsB: vB.filesystem };
}

/** Both root folders, or why one cannot be read. */
async function rootsOf(fsA: Filesystem, fsB: Filesystem): Promise<{ a: FsNode; b: FsNode } | string> {
  try {
    return { a: await fsA.root(), b: await fsB.root() };
  } catch (error) {
    if (!(error instanceof CofferError) || error.code === 'E_INTERRUPTED') throw error;
    return `its root folder cannot be read: ${error.message}`;
  }
}
