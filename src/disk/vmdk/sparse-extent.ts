import type { ImageFile } from '../image-file.js';
import { BoundedCache } from './bounded-cache.js';
import { parseSparseHeader, SECTOR, SPARSE_HEADER_SIZE, type SparseHeader } from './sparse-header.js';
import { FOOTER_TAIL_SIZE, GRAIN_MARKER_SIZE, footerSector, inflateGrain, parseGrainMarker } from './stream-optimized.js';

/** Grain directory pages kept: 16 × 4 KiB, each covering 1024 grain tables. */
const CACHED_GD_PAGES = 16;
const GD_PAGE_BYTES = 4096;
/** Grain tables kept: 64 × 2 KiB, 2 GiB of guest at 64 KiB grains. */
const CACHED_GRAIN_TABLES = 64;
/** Inflated grains kept for reads that touch one compressed grain several times. */
const CACHED_GRAINS = 8;
/** Grain table entry of a zeroed grain (with the zeroed-grain flag). */
const GTE_ZEROED = 1;

/**
 * A run of an extent's bytes (offsets relative to the extent) and where it lives:
 * unallocated (the parent's, or zeros), zeroed in this extent, stored at `host` in the
 * file, or inside the compressed grain number `grain` whose marker is at `host`.
 */
export type SparseRun =
  | { offset: number; length: number; kind: 'unallocated' | 'zero' }
  | { offset: number; length: number; kind: 'data'; host: number }
  | { offset: number; length: number; kind: 'compressed'; host: number; grain: number; within: number };

/**
 * One hosted sparse extent file (`KDMV`): its header (the footer's copy when the header
 * defers to it), and the two-level map from the extent's bytes to grains in the file —
 * the grain directory (read a page at a time) and grain tables, both cached. Every offset
 * read from the file is checked against the file's size before it is used.
 */
export class SparseExtent {
  /** Bytes of guest data the extent holds (capacity × 512). */
  readonly bytes: number;
  readonly grainBytes: number;
  private readonly gtSpan: number;
  private readonly gdBytes: number;
  private readonly gdEntries: number;
  private readonly gdPages = new BoundedCache<number, Promise<Buffer>>(CACHED_GD_PAGES);
  private readonly tables = new BoundedCache<number, Promise<Buffer | null>>(CACHED_GRAIN_TABLES);
  private readonly grains = new BoundedCache<number, Promise<Buffer>>(CACHED_GRAINS);

  private constructor(
    readonly file: ImageFile,
    readonly header: SparseHeader,
    private readonly startSector: number,
  ) {
    this.bytes = header.capacity * SECTOR;
    this.grainBytes = header.grainSize * SECTOR;
    this.gtSpan = header.gtesPerGt * this.grainBytes;
    this.gdEntries = Math.ceil(this.bytes / this.gtSpan);
    this.gdBytes = (header.gdOffset as number) * SECTOR;
  }

  /**
   * Reads the header of `file` (and the footer when the header says the grain directory is
   * only known there) and checks the grain directory lies inside the file. `startSector` is
   * where the extent begins in the virtual disk (grain markers may count from there).
   */
  static async open(file: ImageFile, startSector: number): Promise<SparseExtent> {
    const header = await readEffectiveHeader(file);
    if (header.overHead * SECTOR > file.size) {
      throw file.invalid(`the file is truncated: its metadata ends at byte ${header.overHead * SECTOR} but the file has ${file.size}`);
    }
    const extent = new SparseExtent(file, header, startSector);
    const gdEnd = extent.gdBytes + extent.gdEntries * 4;
    if (!Number.isSafeInteger(gdEnd) || gdEnd > file.size) {
      throw file.invalid(`the grain directory (${extent.gdEntries} entries at byte ${extent.gdBytes}) lies past the end of the file (${file.size} bytes)`, extent.gdBytes);
    }
    return extent;
  }

  /** What the extent's bytes `[from, to)` are, in order; whole grain tables that are absent come as one run. */
  async *runs(from: number, to: number): AsyncIterable<SparseRun> {
    for (let position = from; position < to; ) {
      const grain = Math.floor(position / this.grainBytes);
      const tableIndex = Math.floor(grain / this.header.gtesPerGt);
      const table = await this.table(tableIndex);
      if (table === null) {
        const end = Math.min(to, (tableIndex + 1) * this.gtSpan);
        yield { offset: position, length: end - position, kind: 'unallocated' };
        position = end;
        continue;
      }
      const within = position - grain * this.grainBytes;
      const length = Math.min(to - position, this.grainBytes - within);
      const entry = table.readUInt32LE((grain % this.header.gtesPerGt) * 4);
      if (entry === 0) {
        yield { offset: position, length, kind: 'unallocated' };
      } else if (entry === GTE_ZEROED) {
        if (!this.header.zeroedGrains) throw this.file.invalid(`grain ${grain} points to sector 1, inside the header (a zeroed-grain entry without the zeroed-grain flag)`);
        yield { offset: position, length, kind: 'zero' };
      } else {
        const host = entry * SECTOR;
        if (this.header.compressed) {
          if (host + GRAIN_MARKER_SIZE > this.file.size) throw this.file.invalid(`compressed grain ${grain} points to byte ${host}, past the end of the file`, host);
          yield { offset: position, length, kind: 'compressed', host, grain, within };
        } else {
          const end = host + this.guestBytesOf(grain);
          if (end > this.file.size) throw this.file.invalid(`grain ${grain} at bytes ${host}..${end} lies past the end of the file (${this.file.size} bytes)`, host);
          yield { offset: position, length, kind: 'data', host: host + within };
        }
      }
      position += length;
    }
  }

  /** The inflated compressed grain `grain` whose marker is at `host`, exactly one grain long. */
  inflatedGrain(host: number, grain: number): Promise<Buffer> {
    return this.grains.obtain(host, async () => {
      const marker = parseGrainMarker(await this.file.readAt(host, GRAIN_MARKER_SIZE), this.file, host);
      const grainSector = grain * this.header.grainSize;
      if (marker.lba !== grainSector && marker.lba !== this.startSector + grainSector) {
        throw this.file.invalid(`the grain marker at byte ${host} is for sector ${marker.lba}, but grain ${grain} starts at sector ${grainSector}`, host);
      }
      // A grain that does not compress takes a little more than a grain; QEMU allows two.
      if (marker.size === 0 || marker.size > 2 * this.grainBytes || host + GRAIN_MARKER_SIZE + marker.size > this.file.size) {
        throw this.file.invalid(`the compressed grain at byte ${host} claims ${marker.size} bytes, more than allowed or than the file holds`, host);
      }
      const data = await this.file.readAt(host + GRAIN_MARKER_SIZE, marker.size);
      return inflateGrain(data, this.grainBytes, this.guestBytesOf(grain), this.file, host);
    });
  }

  /** Guest bytes grain `grain` holds: a whole grain, except possibly the extent's last. */
  private guestBytesOf(grain: number): number {
    return Math.min(this.grainBytes, this.bytes - grain * this.grainBytes);
  }

  /** Grain table `index` (null when the directory has none), with its offset checked. */
  private table(index: number): Promise<Buffer | null> {
    return this.tables.obtain(index, async () => {
      const sector = await this.directoryEntry(index);
      if (sector === 0) return null;
      const host = sector * SECTOR;
      const size = this.header.gtesPerGt * 4;
      if (host + size > this.file.size) {
        throw this.file.invalid(`grain directory entry ${index} points to a grain table at byte ${host}, past the end of the file (${this.file.size} bytes)`, host);
      }
      return this.file.readAt(host, size);
    });
  }

  private async directoryEntry(index: number): Promise<number> {
    if (index >= this.gdEntries) throw new RangeError(`grain table ${index} is beyond the grain directory`);
    const page = Math.floor((index * 4) / GD_PAGE_BYTES);
    const bytes = await this.gdPages.obtain(page, () => {
      const start = page * GD_PAGE_BYTES;
      return this.file.readAt(this.gdBytes + start, Math.min(GD_PAGE_BYTES, this.gdEntries * 4 - start));
    });
    return bytes.readUInt32LE(index * 4 - page * GD_PAGE_BYTES);
  }
}

/**
 * The header that describes the extent: the first sector's, or, when that defers its grain
 * directory to the end (stream-optimized files written in one pass), the footer's.
 */
async function readEffectiveHeader(file: ImageFile): Promise<SparseHeader> {
  const header = parseSparseHeader(await file.readAt(0, SPARSE_HEADER_SIZE), file);
  if (header.gdOffset !== 'footer') return header;
  if (file.size < SPARSE_HEADER_SIZE + FOOTER_TAIL_SIZE) throw file.invalid('the stream-optimized extent is too short to hold a footer');
  const tail = await file.readAt(file.size - FOOTER_TAIL_SIZE, FOOTER_TAIL_SIZE);
  const footer = parseSparseHeader(footerSector(tail, file), file, 'footer');
  if (footer.gdOffset === 'footer') throw file.invalid('the footer does not say where the grain directory is either');
  return footer;
}
