/**
 * The guest activity between backups, applied to a copy of the base disk. All changes are
 * deterministic (seeded) and keep the filesystem consistent, as a real guest's writes would:
 *
 * - {@link scatterWrites}: random 4 KiB blocks inside file data, plus one contiguous run.
 * - {@link clusterChanges}: a few files rewritten in place, a few appended to, one region in
 *   the middle of a large file rewritten.
 * - {@link fillFreeSpace}: random data written into 1 MiB slots of free space (a clone VM
 *   that has diverged from its template).
 *
 * Written data is random, hence incompressible and never seen before by any tool.
 *
 * @module
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { DiskLayout } from './disk.js';
import { debugfsWrite, fileExtents, freeBlocks, type Extent } from './ext4.js';
import { ByteStream, Prng } from './random.js';
import type { StagedFile } from './stage.js';

/** What one change function did to the disk. */
export interface ChangeSummary {
  /** One line for humans. */
  readonly description: string;
  /** Number of write calls (distinct regions). */
  readonly writes: number;
  /** Bytes written in total. */
  readonly bytesWritten: number;
}

const MiB = 1024 * 1024;

/** Writes `data` at the absolute disk offset. */
async function writeAt(fh: FileHandle, offset: number, data: Buffer): Promise<void> {
  const { bytesWritten } = await fh.write(data, 0, data.length, offset);
  if (bytesWritten !== data.length) throw new Error(`short write at ${offset}`);
}

/** Writes `data` at byte `fileOffset` of a file, following its extents to disk offsets. */
async function writeFileRange(
  fh: FileHandle,
  layout: DiskLayout,
  extents: readonly Extent[],
  fileOffset: number,
  data: Buffer,
): Promise<number> {
  const bs = layout.blockSize;
  const end = fileOffset + data.length;
  let writes = 0;
  for (const e of extents) {
    const from = Math.max(fileOffset, e.logical * bs);
    const to = Math.min(end, (e.logical + e.count) * bs);
    if (from >= to) continue;
    if (e.uninit) throw new Error('writeFileRange: extent still uninitialized');
    const disk = layout.partOffset + e.start * bs + (from - e.logical * bs);
    await writeAt(fh, disk, data.subarray(from - fileOffset, to - fileOffset));
    writes++;
  }
  return writes;
}

/**
 * Version (a): `count` distinct random 4 KiB blocks inside the data of the large files,
 * and one contiguous `contiguousBytes` write inside one extent long enough to hold it
 * (falling back to the longest extents, in pieces, on a disk that has none).
 */
export async function scatterWrites(
  image: string,
  layout: DiskLayout,
  opts: { count: number; contiguousBytes: number },
): Promise<ChangeSummary> {
  const bs = layout.blockSize;
  const perFile = await fileExtents(image, layout.partOffset, layout.large.map((f) => f.path));
  const extents = perFile.flat().filter((e) => !e.uninit);
  const prefix: number[] = [];
  let total = 0;
  for (const e of extents) {
    prefix.push(total);
    total += e.count;
  }
  if (total < opts.count) throw new Error(`only ${total} data blocks to scatter ${opts.count} writes over`);
  const prng = new Prng(0x5ca7);
  const bytes = new ByteStream('scattered');
  const chosen = new Set<number>();
  while (chosen.size < opts.count) chosen.add(prng.below(total));

  const fh = await open(image, 'r+');
  try {
    for (const index of [...chosen].sort((a, b) => a - b)) {
      const i = upperBound(prefix, index) - 1;
      const e = extents[i]!;
      const block = e.start + (index - prefix[i]!);
      await writeAt(fh, layout.partOffset + block * bs, bytes.next(4096));
    }
    const need = Math.ceil(opts.contiguousBytes / bs);
    const long = extents.filter((e) => e.count >= need);
    let contiguous = 'in one extent';
    let pieces = 1;
    if (long.length > 0) {
      const e = long[prng.below(long.length)]!;
      const first = e.start + prng.below(e.count - need + 1);
      await writeAt(fh, layout.partOffset + first * bs, bytes.next(need * bs));
    } else {
      contiguous = 'in pieces (no extent was long enough)';
      let left = need;
      pieces = 0;
      for (const e of [...extents].sort((a, b) => b.count - a.count)) {
        if (left <= 0) break;
        const n = Math.min(left, e.count);
        await writeAt(fh, layout.partOffset + e.start * bs, bytes.next(n * bs));
        left -= n;
        pieces++;
      }
    }
    return {
      description: `${opts.count} random 4 KiB writes in file data + ${opts.contiguousBytes / MiB} MiB ${contiguous}`,
      writes: opts.count + pieces,
      bytesWritten: opts.count * 4096 + need * bs,
    };
  } finally {
    await fh.close();
  }
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

/** The untaken file whose size is nearest `target` on a log scale. */
function nearest(files: readonly StagedFile[], target: number, taken: Set<string>): StagedFile {
  let best: StagedFile | undefined;
  let bestD = Infinity;
  for (const f of files) {
    if (taken.has(f.path)) continue;
    const d = Math.abs(Math.log(f.size / target));
    if (d < bestD) [best, bestD] = [f, d];
  }
  if (!best) throw new Error('not enough large files on the base disk for the clustered changes');
  taken.add(best.path);
  return best;
}

/**
 * Version (b): clustered changes, as a guest updating a few files would make.
 * - three files near 8 MiB rewritten in place (same blocks, new content);
 * - two files near 2 MiB appended to by 4 MiB each: debugfs sets the size, `fallocate`s
 *   the new blocks (allocated next to the file when free) and `set_bmap` marks them
 *   written, then the data is written at the new blocks;
 * - 4 MiB in the middle of the largest file rewritten in place.
 */
export async function clusterChanges(image: string, layout: DiskLayout): Promise<ChangeSummary> {
  const bs = layout.blockSize;
  const off = layout.partOffset;
  const taken = new Set<string>();
  const rewrite = [0, 1, 2].map(() => nearest(layout.large, 8 * MiB, taken));
  const append = [0, 1].map(() => nearest(layout.large, 2 * MiB, taken));
  const largest = [...layout.large].filter((f) => !taken.has(f.path)).sort((a, b) => b.size - a.size)[0];
  if (!largest) throw new Error('no file left for the middle rewrite');
  const appendBytes = 4 * MiB;

  // Extend the appended files first: size, then allocation, then mark the new extents written.
  const grow: string[] = [];
  for (const f of append) {
    const firstNew = Math.ceil(f.size / bs);
    const lastNew = Math.ceil((f.size + appendBytes) / bs) - 1;
    grow.push(`sif ${f.path} size ${f.size + appendBytes}`, `fallocate ${f.path} ${firstNew} ${lastNew}`);
  }
  await debugfsWrite(image, off, grow);
  const uninit = await fileExtents(image, off, append.map((f) => f.path));
  const mark: string[] = [];
  append.forEach((f, i) => {
    mark.push(`extent_open ${f.path}`);
    for (const e of uninit[i] ?? []) {
      if (!e.uninit) continue;
      for (let b = 0; b < e.count; b++) mark.push(`set_bmap ${e.logical + b} ${e.start + b}`);
    }
    mark.push('extent_close');
  });
  await debugfsWrite(image, off, mark);

  const files = [...rewrite, ...append, largest];
  const extents = await fileExtents(image, off, files.map((f) => f.path));
  const bytes = new ByteStream('clustered');
  let writes = 0;
  let written = 0;
  const fh = await open(image, 'r+');
  try {
    const edit = async (i: number, fileOffset: number, n: number): Promise<void> => {
      writes += await writeFileRange(fh, layout, extents[i] ?? [], fileOffset, bytes.next(n));
      written += n;
    };
    for (let i = 0; i < rewrite.length; i++) await edit(i, 0, rewrite[i]!.size);
    for (let i = 0; i < append.length; i++) await edit(rewrite.length + i, append[i]!.size, appendBytes);
    const middle = Math.floor(largest.size / 2 / bs) * bs;
    await edit(files.length - 1, middle, Math.min(4 * MiB, largest.size - middle));
  } finally {
    await fh.close();
  }
  const mib = (n: number): string => (n / MiB).toFixed(1);
  return {
    description:
      `rewrote ${rewrite.map((f) => `${f.path} (${mib(f.size)} MiB)`).join(', ')}; ` +
      `appended 4 MiB to ${append.map((f) => `${f.path} (${mib(f.size)} MiB)`).join(', ')}; ` +
      `rewrote 4 MiB in the middle of ${largest.path} (${mib(largest.size)} MiB)`,
    writes,
    bytesWritten: written,
  };
}

/**
 * Version (c), the clone: `bytes` of random data in distinct random 1 MiB-aligned slots of
 * the partition's free space. The filesystem is unchanged (free blocks may hold anything).
 */
export async function fillFreeSpace(image: string, layout: DiskLayout, bytes: number): Promise<ChangeSummary> {
  const slotBlocks = MiB / layout.blockSize;
  const slots: number[] = [];
  for (const r of await freeBlocks(image, layout.partOffset)) {
    for (let s = Math.ceil(r.start / slotBlocks) * slotBlocks; s + slotBlocks <= r.start + r.count; s += slotBlocks) {
      slots.push(s);
    }
  }
  const want = Math.ceil(bytes / MiB);
  if (slots.length < want) throw new Error(`only ${slots.length} MiB of free slots for a ${want} MiB clone`);
  const prng = new Prng(0xc107e);
  for (let i = 0; i < want; i++) {
    const j = i + prng.below(slots.length - i);
    [slots[i], slots[j]] = [slots[j]!, slots[i]!];
  }
  const data = new ByteStream('clone');
  const fh = await open(image, 'r+');
  try {
    for (const s of slots.slice(0, want).sort((a, b) => a - b)) {
      await writeAt(fh, layout.partOffset + s * layout.blockSize, data.next(MiB));
    }
  } finally {
    await fh.close();
  }
  return { description: `${want} MiB of random data in ${want} free 1 MiB slots`, writes: want, bytesWritten: want * MiB };
}
