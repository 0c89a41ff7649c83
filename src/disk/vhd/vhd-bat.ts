/**
 * The VHD block allocation table and sector bitmaps (layout in vhd-dynamic-header.ts), parsed
 * from bytes: which blocks are in the file and where, and which sectors of a block the block
 * holds. Pure: the reader fetches the bytes.
 */
import type { ImageFile } from '../image-file.js';
import { BAT_UNALLOCATED } from './vhd-dynamic-header.js';
import { VHD_SECTOR } from './vhd-footer.js';

/** The shape of a dynamic disk's blocks. */
export interface BlockLayout {
  blockSize: number;
  bitmapSize: number;
  /** Blocks the virtual size spans: ceil(size / blockSize), at most the table's entries. */
  blocksInUse: number;
}

/**
 * The BAT as sector numbers (0xFFFFFFFF: not allocated). Each entry the disk uses must put
 * its bitmap and its whole block inside the file; entries past the virtual size are ignored.
 * Throws `E_IMAGE_INVALID` naming the image and the block.
 */
export function parseBat(bytes: Uint8Array, options: { layout: BlockLayout; image: Pick<ImageFile, 'invalid' | 'size'> }): Uint32Array {
  const { layout, image } = options;
  if (bytes.length % 4 !== 0 || bytes.length / 4 < layout.blocksInUse) {
    throw image.invalid(`VHD block allocation table has ${Math.floor(bytes.length / 4)} entries, the virtual size needs ${layout.blocksInUse}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const table = new Uint32Array(bytes.length / 4);
  for (let i = 0; i < table.length; i++) {
    const sector = view.getUint32(i * 4, false);
    table[i] = sector;
    if (sector === BAT_UNALLOCATED || i >= layout.blocksInUse) continue;
    const end = sector * VHD_SECTOR + layout.bitmapSize + layout.blockSize;
    if (end > image.size) {
      throw image.invalid(`VHD block ${i} at byte ${sector * VHD_SECTOR} (bitmap and ${layout.blockSize}-byte block) runs past the end of the file (${image.size} bytes)`, sector * VHD_SECTOR);
    }
  }
  return table;
}

/**
 * A block's sector bitmap, summarized: `full` (every sector is in the block), `empty`
 * (none is), or the bitmap bytes (bit 7 of byte 0 is the block's first sector).
 */
export type SectorBitmap = 'full' | 'empty' | Uint8Array;

/** Summarizes the bitmap of a block of `sectors` sectors. */
export function parseSectorBitmap(bytes: Uint8Array, sectors: number): SectorBitmap {
  let set = 0;
  const wholeBytes = Math.floor(sectors / 8);
  for (let i = 0; i < wholeBytes; i++) {
    const byte = bytes[i] as number;
    if (byte === 0xff) set += 8;
    else if (byte !== 0) return bytes;
  }
  for (let s = wholeBytes * 8; s < sectors; s++) if (bitSet(bytes, s)) set++;
  if (set === sectors) return 'full';
  if (set === 0) return 'empty';
  return bytes;
}

/** A run of sectors that the block holds (`present`) or not. */
export interface SectorRun {
  present: boolean;
  first: number;
  count: number;
}

/** The sectors `first .. first + count - 1` of a block as runs of equal presence, in order. */
export function sectorRuns(bitmap: SectorBitmap, first: number, count: number): SectorRun[] {
  if (bitmap === 'full' || bitmap === 'empty') return [{ present: bitmap === 'full', first, count }];
  const runs: SectorRun[] = [];
  const end = first + count;
  for (let s = first; s < end; ) {
    const present = bitSet(bitmap, s);
    let next = s + 1;
    while (next < end) {
      // Whole bytes of the same value at once.
      if (next % 8 === 0 && next + 8 <= end && bitmap[next >>> 3] === (present ? 0xff : 0)) {
        next += 8;
        continue;
      }
      if (bitSet(bitmap, next) !== present) break;
      next++;
    }
    runs.push({ present, first: s, count: next - s });
    s = next;
  }
  return runs;
}

function bitSet(bitmap: Uint8Array, sector: number): boolean {
  return (((bitmap[sector >>> 3] as number) >>> (7 - (sector & 7))) & 1) === 1;
}
