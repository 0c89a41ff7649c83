import { createHash } from 'node:crypto';

/**
 * Content-defined chunking, FastCDC (Xia et al., USENIX ATC 2016) with normalized chunking:
 * a gear hash `h = (h << 1) + GEAR[byte]` (32 bits) rolls over the bytes after the first
 * `min` of a chunk; a cut falls after the first byte where the hash's top bits are all zero:
 * `bits(avg) + 2` of them before `avg` bytes (cuts are rare), `bits(avg) - 2` after (cuts come
 * soon), and at `max` bytes at the latest. An insertion in a file moves only the cuts near it,
 * so the rest of the file cuts into the same chunks, which deduplicate. The top bits are used
 * because bit k of a gear hash depends only on the last k + 1 bytes: the top 20-odd bits see
 * a window of 32 bytes.
 *
 * GEAR[i] is the first 4 bytes (big-endian) of SHA-256("coffer fastcdc gear " + i): fixed
 * forever, since changing it would cut every file differently and lose deduplication with
 * every earlier snapshot. PLEASE DO NOT CHANGE IT.
 */
export const GEAR: Int32Array = (() => {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) table[i] = createHash('sha256').update(`coffer fastcdc gear ${i}`).digest().readInt32BE(0);
  return table;
})();

/** Chunk size bounds: `min < avg < max`, `avg` a power of two. */
export interface ChunkSizes {
  min: number;
  avg: number;
  max: number;
}

/**
 * The sizes file snapshots use: 256 KiB / 512 KiB / 2 MiB, chosen by measurement
 * (2026-11-26, bench/chunk-sizes.ts, table in docs/file-backup.md): against restic's
 * 512 KiB / 1 MiB / 8 MiB the same tree stores the same bytes in 3% more objects, an
 * incremental after edits in the middle of large files stores 29% less (each edit rewrites
 * about one average chunk), no difference in speed could be measured (the chunker cuts
 * about 1 GB/s on one core), and a file in flight holds a 4 MiB window instead of 16 MiB.
 * A chunk is then about the size of an image block (256 KiB by default). Part of the format
 * in effect: other sizes cut other chunks, so changing them loses deduplication with earlier
 * snapshots (never correctness).
 */
export const FILE_CHUNK_SIZES: ChunkSizes = { min: 256 * 1024, avg: 512 * 1024, max: 2 * 1024 * 1024 };

/** A mask of the top `bits` bits of a 32-bit value, as an int32. */
function topBits(bits: number): number {
  return bits <= 0 ? 0 : (~0 << (32 - bits)) | 0;
}

/**
 * Finds chunk boundaries. `cut` answers where the chunk starting at `start` ends, looking at
 * no more than `max` bytes: the caller passes at least `max` bytes after `start` unless the
 * data ends there (`end` is then the end of the file).
 */
export class FastCdc {
  private readonly maskSmall: number;
  private readonly maskLarge: number;

  constructor(readonly sizes: ChunkSizes = FILE_CHUNK_SIZES) {
    const bits = Math.log2(sizes.avg);
    if (!Number.isInteger(bits) || sizes.min < 64 || sizes.min >= sizes.avg || sizes.avg >= sizes.max) {
      throw new RangeError(`chunk sizes ${sizes.min}/${sizes.avg}/${sizes.max}: need 64 ≤ min < avg < max, avg a power of two`);
    }
    this.maskSmall = topBits(bits + 2);
    this.maskLarge = topBits(bits - 2);
  }

  /** Length of the chunk that starts at `start` in `data[start, end)`. */
  cut(data: Uint8Array, start: number, end: number): number {
    const { min, avg, max } = this.sizes;
    const length = Math.min(end - start, max);
    if (length <= min) return length;
    const normal = Math.min(avg, length);
    const gear = GEAR;
    const small = this.maskSmall;
    const large = this.maskLarge;
    let hash = 0;
    let i = start + min;
    const normalEnd = start + normal;
    for (; i < normalEnd; i++) {
      hash = ((hash << 1) + (gear[data[i] as number] as number)) | 0;
      if ((hash & small) === 0) return i + 1 - start;
    }
    const stop = start + length;
    for (; i < stop; i++) {
      hash = ((hash << 1) + (gear[data[i] as number] as number)) | 0;
      if ((hash & large) === 0) return i + 1 - start;
    }
    return length;
  }
}
