import { BlockMappedImage } from '../block-mapped-image.js';
import type { DiskImage } from '../disk-image.js';
import type { ImageFile } from '../image-file.js';
import type { SegmentKind } from '../segments.js';
import { parseSectorBitmap, sectorRuns, type SectorBitmap } from './vhd-bat.js';
import { BAT_UNALLOCATED, type VhdDynamicHeader } from './vhd-dynamic-header.js';
import { VHD_SECTOR, type VhdFooter } from './vhd-footer.js';

/** Sector bitmaps cached: as many as 4 MiB holds (8192 of qemu's and Hyper-V's 512-byte ones)… */
const BITMAP_CACHE_BYTES = 4 * 1024 * 1024;
/** …but at least this many bitmaps, so a read spanning a few huge blocks keeps them. */
const MIN_CACHED_BITMAPS = 16;
/**
 * Bitmaps of the allocated blocks that follow a missed one, read at the same time: a walk of
 * the map (a copy plans its reads with one) asks for every block's bitmap in turn, and one
 * small read at a time made it wait ~1,200 times on a 4 GiB disk (2026-11-26).
 */
const BITMAP_READ_AHEAD = 32;

/** Where a run of guest bytes comes from. */
type Segment =
  | { offset: number; length: number; source: 'data'; host: number }
  | { offset: number; length: number; source: 'zero' }
  | { offset: number; length: number; source: 'parent' };

/**
 * A dynamic or differencing VHD as a block device. Guest offsets map through the BAT (kept in
 * memory) to blocks; within a block, the sector bitmap says which sectors the block holds. A
 * sector the image does not hold (its block unallocated, or its bitmap bit clear) reads as
 * zeros on a dynamic disk and from the parent on a differencing disk. Each run of held sectors
 * inside a block is one file read; blocks are never adjacent in the file (a bitmap sits between
 * two), so a read spanning k blocks costs k file reads plus the bitmaps not yet cached.
 * Concurrent reads are allowed.
 */
export class SparseVhd extends BlockMappedImage<Segment> implements DiskImage {
  readonly format = 'vpc' as const;
  readonly size: number;
  protected readonly blockSize: number;
  private readonly sectorsPerBlock: number;
  private readonly bitmaps = new Map<number, Promise<SectorBitmap>>();
  private readonly cachedBitmaps: number;
  /**
   * `bat` must have been checked against the file (parseBat) and cover the virtual size;
   * `parent` is the opened parent of a differencing disk, null for a dynamic one. Takes
   * ownership of both.
   */
  constructor(
    file: ImageFile,
    readonly footer: VhdFooter,
    readonly header: VhdDynamicHeader,
    private readonly bat: Uint32Array,
    readonly backing: DiskImage | null,
  ) {
    super(file, { classify, canMerge });
    this.size = footer.currentSize;
    this.blockSize = header.blockSize;
    this.sectorsPerBlock = header.blockSize / VHD_SECTOR;
    this.cachedBitmaps = Math.max(MIN_CACHED_BITMAPS, Math.floor(BITMAP_CACHE_BYTES / header.bitmapSize));
  }

  /** What `coffer disk info` shows: the VHD's type, block size, and its footer's identity and creator. */
  get details(): Record<string, string | number | boolean> {
    return {
      subformat: this.footer.diskType,
      blockSize: this.blockSize,
      uniqueId: this.footer.uniqueId,
      creator: `${this.footer.creatorApp.trim()} ${this.footer.creatorOs.trim()}`.trim(),
      savedState: this.footer.savedState,
    };
  }

  /** Segments for `take` bytes of block `block` starting `within` it (guest offset `position`). */
  protected async blockSegments(block: number, position: number, within: number, take: number): Promise<Segment[]> {
    const absent = this.backing === null ? 'zero' : 'parent';
    const entry = this.bat[block] as number;
    if (entry === BAT_UNALLOCATED) return [{ offset: position, length: take, source: absent }];
    const data = entry * VHD_SECTOR + this.header.bitmapSize;
    const firstSector = Math.floor(within / VHD_SECTOR);
    const lastSector = Math.floor((within + take - 1) / VHD_SECTOR);
    return sectorRuns(await this.bitmap(block, entry), firstSector, lastSector - firstSector + 1).map((run): Segment => {
      const from = Math.max(within, run.first * VHD_SECTOR);
      const to = Math.min(within + take, (run.first + run.count) * VHD_SECTOR);
      const guest = position + (from - within);
      return run.present ? { offset: guest, length: to - from, source: 'data', host: data + from } : { offset: guest, length: to - from, source: absent };
    });
  }

  /** The sector bitmap of an allocated block, from the cache or the file. */
  private bitmap(block: number, entry: number): Promise<SectorBitmap> {
    let bitmap = this.bitmaps.get(block);
    if (bitmap === undefined) {
      bitmap = this.fetchBitmap(block, entry);
      const ahead = Math.min(this.bat.length, block + 1 + Math.min(BITMAP_READ_AHEAD, this.cachedBitmaps - MIN_CACHED_BITMAPS));
      for (let next = block + 1; next < ahead; next++) {
        const nextEntry = this.bat[next] as number;
        if (nextEntry !== BAT_UNALLOCATED && !this.bitmaps.has(next)) this.cache(next, this.fetchBitmap(next, nextEntry));
      }
    } else {
      this.bitmaps.delete(block); // re-inserted below: the most recently used is last
    }
    this.cache(block, bitmap);
    return bitmap;
  }

  /** Reads the sector bitmap of an allocated block; a failed read leaves the cache. */
  private fetchBitmap(block: number, entry: number): Promise<SectorBitmap> {
    const fetched = this.file.readAt(entry * VHD_SECTOR, this.header.bitmapSize).then((bytes) => parseSectorBitmap(bytes, this.sectorsPerBlock));
    fetched.catch(() => {
      if (this.bitmaps.get(block) === fetched) this.bitmaps.delete(block);
    });
    return fetched;
  }

  /** Keeps `bitmap` as the most recently used, dropping the least recently used past the cache's size. */
  private cache(block: number, bitmap: Promise<SectorBitmap>): void {
    while (this.bitmaps.size >= this.cachedBitmaps) this.bitmaps.delete(this.bitmaps.keys().next().value as number);
    this.bitmaps.set(block, bitmap);
  }
}

/** Held sectors are this image's data; absent ones are zeros on a dynamic disk, the parent's on a differencing one. */
function classify(segment: Segment): SegmentKind {
  if (segment.source === 'data') return { kind: 'data', layer: 0 };
  return segment.source === 'zero' ? { kind: 'zero' } : 'backing';
}

function canMerge(a: Segment, b: Segment): boolean {
  if (a.source !== b.source) return false;
  if (a.source === 'data' && b.source === 'data') return a.host + a.length === b.host;
  return true;
}
