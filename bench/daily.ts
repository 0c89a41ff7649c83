/**
 * A month of a guest's life, for the prune benchmark: the day-to-day churn of the benchmark
 * VM's disk, written into one working copy of the base between two daily backups (thirty
 * cached day-versions would cost ~70 GB; one copy costs the base's 2.3 GB).
 *
 * Each day is seeded by its number, so every run (and every tool of a run) sees the same
 * thirty disks. A day rewrites, inside the data of the base's large files (the blocks a
 * guest's applications rewrite; file sizes and metadata stay as they were, so the
 * filesystem stays consistent):
 * - `scattered` random 4 KiB blocks, chosen uniformly over all those data blocks;
 * - `runs` contiguous stretches of 1 to `maxRunBytes` (uniform, 4 KiB multiples) of a file,
 *   starting at a random block and following the file's extents in order (a file partly
 *   rewritten).
 * At the defaults that is ≈10 MiB written a day, on ≈50 distinct places: a few tens of MiB
 * of changed 256 KiB blocks (Coffer) or of 1-2 MiB content-defined chunks (restic, borg).
 * Written data is random (incompressible) and new every day.
 *
 * @module
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { DiskLayout } from './disk.js';
import { fileExtents, type Extent } from './ext4.js';
import { ByteStream, Prng } from './random.js';

/** How much one day changes. */
export interface DailyChurn {
  /** Random 4 KiB blocks rewritten a day. */
  readonly scattered: number;
  /** Contiguous stretches rewritten a day. */
  readonly runs: number;
  /** Largest stretch, bytes (each is uniform in [4 KiB, this]). */
  readonly maxRunBytes: number;
}

/** What one day wrote. */
export interface DayChange {
  readonly day: number;
  /** Write calls (an extent boundary splits a stretch). */
  readonly writes: number;
  readonly bytesWritten: number;
}

/** A data block of a file, as a position in the concatenation of all files' extents. */
export interface DataBlocks {
  readonly extents: readonly Extent[];
  /** prefix[i]: blocks in extents before i. */
  readonly prefix: readonly number[];
  readonly total: number;
}

const BLOCK = 4096;

/** The written data blocks of the layout's large files, in file order. */
export async function dataBlocks(image: string, layout: DiskLayout): Promise<DataBlocks> {
  if (layout.blockSize !== BLOCK) throw new Error(`daily churn expects 4 KiB ext4 blocks, the base has ${layout.blockSize}`);
  const perFile = await fileExtents(image, layout.partOffset, layout.large.map((f) => f.path));
  const extents = perFile.flat().filter((e) => !e.uninit);
  const prefix: number[] = [];
  let total = 0;
  for (const e of extents) {
    prefix.push(total);
    total += e.count;
  }
  if (total === 0) throw new Error('the base disk has no file data blocks to change');
  return { extents, prefix, total };
}

/**
 * The disk-block ranges one day rewrites, in ascending index order of the data blocks:
 * `[diskBlock, count]` pairs (partition-relative ext4 block numbers). Pure: the same day
 * and blocks give the same ranges.
 */
export function dayRanges(blocks: DataBlocks, churn: DailyChurn, day: number): Array<[number, number]> {
  const prng = new Prng(0xda11 + day * 7919);
  const ranges: Array<[number, number]> = [];
  /** The disk ranges of `n` data blocks from data-block index `from`, following extents. */
  const follow = (from: number, n: number): void => {
    let i = upperBound(blocks.prefix, from) - 1;
    let inExtent = from - blocks.prefix[i]!;
    let left = n;
    while (left > 0 && i < blocks.extents.length) {
      const e = blocks.extents[i]!;
      const take = Math.min(left, e.count - inExtent);
      ranges.push([e.start + inExtent, take]);
      left -= take;
      i++;
      inExtent = 0;
    }
  };
  for (let k = 0; k < churn.scattered; k++) follow(prng.below(blocks.total), 1);
  const maxBlocks = Math.max(1, Math.floor(churn.maxRunBytes / BLOCK));
  for (let k = 0; k < churn.runs; k++) {
    const n = 1 + prng.below(maxBlocks);
    follow(prng.below(blocks.total), Math.min(n, blocks.total));
  }
  return ranges;
}

/** Writes one day's changes into the working copy `image` (the day before's state). */
export async function applyDay(image: string, layout: DiskLayout, blocks: DataBlocks, churn: DailyChurn, day: number): Promise<DayChange> {
  const bytes = new ByteStream(`daily-${day}`);
  let written = 0;
  const ranges = dayRanges(blocks, churn, day);
  const fh: FileHandle = await open(image, 'r+');
  try {
    for (const [block, count] of ranges) {
      const data = bytes.next(count * BLOCK);
      const { bytesWritten } = await fh.write(data, 0, data.length, layout.partOffset + block * BLOCK);
      if (bytesWritten !== data.length) throw new Error(`short write at block ${block}`);
      written += data.length;
    }
  } finally {
    await fh.close();
  }
  return { day, writes: ranges.length, bytesWritten: written };
}

/** Index of the first element greater than `x` in an ascending array. */
function upperBound(sorted: readonly number[], x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
