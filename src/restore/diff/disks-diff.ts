import type { DiskRecord, Repository, Snapshot } from '../../repo/index.js';
import { findDisk } from '../restore-snapshot.js';
import { diskChanges, type DiskChanges } from './disk-changes.js';

/** One disk in the comparison of two VM snapshots, matched by name. */
export type DiskDiff =
  | { name: string; change: 'added'; sizeB: number }
  | { name: string; change: 'removed'; sizeA: number }
  | ({ name: string; change: 'changed' | 'unchanged'; sizeA: number; sizeB: number; blockSize: number } & DiskChanges);

/** What {@link diffSnapshotDisks} found. */
export interface DisksDiff {
  /** The second snapshot's disks in its order, then those only the first had. */
  disks: DiskDiff[];
  totals: { changedBlocks: number; changedBytes: number; zeroedBlocks: number; disksChanged: number; disksAdded: number; disksRemoved: number; disksResized: number; pagesRead: number; pagesSkipped: number };
}

/** Options of {@link diffSnapshotDisks}. */
export interface DisksDiffOptions {
  /** Only this disk: a name, or a number in the second snapshot (matched by name in the first). */
  disk?: string;
  signal?: AbortSignal;
}

/**
 * The disks of two VM snapshots compared: disks are matched by name (a disk only in `b` is
 * added, only in `a` removed); for each disk in both, the byte ranges whose blocks differ
 * ({@link diskChanges}: index pages only, no chunk read). Throws `E_DISK_NOT_FOUND` for a
 * `disk` neither snapshot has.
 */
export async function diffSnapshotDisks(repo: Repository, a: Snapshot, b: Snapshot, options: DisksDiffOptions = {}): Promise<DisksDiff> {
  let disksB: DiskRecord[] = b.disks;
  let disksA: DiskRecord[] = a.disks;
  if (options.disk !== undefined) {
    const only = b.disks.find((d) => d.name === options.disk) ?? a.disks.find((d) => d.name === options.disk) ?? findDisk(b, options.disk);
    disksB = b.disks.filter((d) => d.name === only.name);
    disksA = a.disks.filter((d) => d.name === only.name);
  }
  const out: DisksDiff = { disks: [], totals: { changedBlocks: 0, changedBytes: 0, zeroedBlocks: 0, disksChanged: 0, disksAdded: 0, disksRemoved: 0, disksResized: 0, pagesRead: 0, pagesSkipped: 0 } };
  const t = out.totals;
  for (const diskB of disksB) {
    const diskA = disksA.find((d) => d.name === diskB.name);
    if (diskA === undefined) {
      out.disks.push({ name: diskB.name, change: 'added', sizeB: diskB.size });
      t.disksAdded += 1;
      continue;
    }
    const changes = await diskChanges(repo, diskA, diskB, options.signal !== undefined ? { signal: options.signal } : {});
    const resized = diskA.size !== diskB.size;
    const change = changes.changedBlocks > 0 || resized ? 'changed' : 'unchanged';
    out.disks.push({ name: diskB.name, change, sizeA: diskA.size, sizeB: diskB.size, blockSize: diskB.blockSize, ...changes });
    if (change === 'changed') t.disksChanged += 1;
    if (resized) t.disksResized += 1;
    t.changedBlocks += changes.changedBlocks;
    t.changedBytes += changes.changedBytes;
    t.zeroedBlocks += changes.zeroedBlocks;
    t.pagesRead += changes.pagesRead;
    t.pagesSkipped += changes.pagesSkipped;
  }
  for (const diskA of disksA) {
    if (disksB.some((d) => d.name === diskA.name)) continue;
    out.disks.push({ name: diskA.name, change: 'removed', sizeA: diskA.size });
    t.disksRemoved += 1;
  }
  return out;
}
