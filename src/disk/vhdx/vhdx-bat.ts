/**
 * The VHDX block allocation table (MS-VHDX 2.5): one little-endian u64 per payload block, with
 * a sector bitmap entry after every `chunk ratio` payload entries.
 *
 * ```
 * bits   field
 *  0-2   state: payload blocks 0 NOT_PRESENT, 1 UNDEFINED, 2 ZERO, 3 UNMAPPED,
 *        6 FULLY_PRESENT, 7 PARTIALLY_PRESENT (differencing disks only);
 *        sector bitmap blocks 0 NOT_PRESENT, 6 PRESENT
 *  3-19  reserved
 * 20-63  file offset in MiB (the entry with its low 20 bits cleared is the byte offset)
 * ```
 * chunk ratio = 2^23 × logical sector size / block size: the payload blocks one 1 MiB sector
 * bitmap block covers (1 bit per logical sector, least significant bit of each byte first).
 * Payload block i is entry i + floor(i / chunk ratio); the bitmap of chunk c is entry
 * c × (chunk ratio + 1) + chunk ratio. A dynamic or fixed disk's table may stop after the last
 * payload entry; a differencing disk's always holds whole chunks.
 *
 * PLEASE DO NOT MODIFY THESE MAGIC VALUES: they are the format.
 */
import type { ImageFile } from '../image-file.js';
import { MiB } from './vhdx-header.js';

export const BAT_ENTRY_SIZE = 8;
export const PAYLOAD_BLOCK_NOT_PRESENT = 0;
export const PAYLOAD_BLOCK_UNDEFINED = 1;
export const PAYLOAD_BLOCK_ZERO = 2;
export const PAYLOAD_BLOCK_UNMAPPED = 3;
export const PAYLOAD_BLOCK_FULLY_PRESENT = 6;
export const PAYLOAD_BLOCK_PARTIALLY_PRESENT = 7;
export const SB_BLOCK_NOT_PRESENT = 0;
export const SB_BLOCK_PRESENT = 6;
/** A sector bitmap block's size. */
export const SECTOR_BITMAP_BLOCK_SIZE = MiB;

/** The shape of the table, from the metadata. */
export interface BatLayout {
  blockSize: number;
  logicalSectorSize: number;
  virtualSize: number;
  hasParent: boolean;
}

/** The decoded table: per payload block its state and byte offset; per chunk its bitmap's offset (0 if none). */
export interface VhdxBat {
  chunkRatio: number;
  payloadBlocks: number;
  states: Uint8Array;
  offsets: Float64Array;
  bitmapOffsets: Float64Array;
}

/** Chunk ratio, payload blocks and the number of table entries the layout needs. */
export function batGeometry(layout: BatLayout): { chunkRatio: number; payloadBlocks: number; entries: number } {
  const chunkRatio = (2 ** 23 * layout.logicalSectorSize) / layout.blockSize;
  const payloadBlocks = Math.ceil(layout.virtualSize / layout.blockSize);
  const chunks = Math.ceil(payloadBlocks / chunkRatio);
  const entries = layout.hasParent ? chunks * (chunkRatio + 1) : payloadBlocks + Math.max(0, Math.floor((payloadBlocks - 1) / chunkRatio));
  return { chunkRatio, payloadBlocks, entries };
}

/**
 * Decodes and checks the table's first `entries` (see {@link batGeometry}) entries: known
 * states only, PARTIALLY_PRESENT only on differencing disks, and every present block (the part
 * of it the virtual size uses) and bitmap inside the file and past its first MiB. Throws
 * `E_IMAGE_INVALID` naming the image and the block.
 */
export function parseVhdxBat(bytes: Uint8Array, options: { layout: BatLayout; image: Pick<ImageFile, 'invalid' | 'size'> }): VhdxBat {
  const { layout, image } = options;
  const { chunkRatio, payloadBlocks, entries } = batGeometry(layout);
  if (bytes.length < entries * BAT_ENTRY_SIZE) throw image.invalid(`VHDX BAT holds ${Math.floor(bytes.length / BAT_ENTRY_SIZE)} entries, the virtual size needs ${entries}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const states = new Uint8Array(payloadBlocks);
  const offsets = new Float64Array(payloadBlocks);
  const chunks = Math.ceil(payloadBlocks / chunkRatio);
  const bitmapOffsets = new Float64Array(chunks);
  const decode = (entry: number): { state: number; offset: number } => {
    const low = view.getUint32(entry * BAT_ENTRY_SIZE, true);
    const high = view.getUint32(entry * BAT_ENTRY_SIZE + 4, true);
    // bits 20-63 in MiB: (high × 2^32 + low) with the low 20 bits cleared; stays below 2^64,
    // checked against the file size before use (a Float64 loses no bits at MiB granularity
    // below 2^73, so any value that could fit a real file is exact).
    return { state: low & 7, offset: high * 2 ** 32 + (low >>> 20) * MiB };
  };
  const inFile = (offset: number, length: number) => offset >= MiB && offset + length <= image.size;

  for (let block = 0; block < payloadBlocks; block++) {
    const { state, offset } = decode(block + Math.floor(block / chunkRatio));
    states[block] = state;
    switch (state) {
      case PAYLOAD_BLOCK_NOT_PRESENT:
      case PAYLOAD_BLOCK_UNDEFINED:
      case PAYLOAD_BLOCK_ZERO:
      case PAYLOAD_BLOCK_UNMAPPED:
        break;
      case PAYLOAD_BLOCK_PARTIALLY_PRESENT:
      case PAYLOAD_BLOCK_FULLY_PRESENT: {
        if (state === PAYLOAD_BLOCK_PARTIALLY_PRESENT && !layout.hasParent) {
          throw image.invalid(`VHDX block ${block} is partially present, which only a differencing disk may be`);
        }
        const used = Math.min(layout.blockSize, layout.virtualSize - block * layout.blockSize);
        if (!inFile(offset, used)) {
          throw image.invalid(`VHDX block ${block} (${used} bytes at byte ${offset}) runs past the end of the file (${image.size} bytes): the image is truncated or its BAT is corrupt`, offset);
        }
        offsets[block] = offset;
        break;
      }
      default:
        throw image.invalid(`VHDX block ${block} has the undefined state ${state}`);
    }
  }
  if (layout.hasParent) {
    for (let chunk = 0; chunk < chunks; chunk++) {
      const { state, offset } = decode(chunk * (chunkRatio + 1) + chunkRatio);
      if (state === SB_BLOCK_NOT_PRESENT) continue;
      if (state !== SB_BLOCK_PRESENT) throw image.invalid(`VHDX sector bitmap ${chunk} has the undefined state ${state}`);
      if (!inFile(offset, SECTOR_BITMAP_BLOCK_SIZE)) throw image.invalid(`VHDX sector bitmap ${chunk} at byte ${offset} lies outside the file (${image.size} bytes)`, offset);
      bitmapOffsets[chunk] = offset;
    }
    for (let block = 0; block < payloadBlocks; block++) {
      if (states[block] === PAYLOAD_BLOCK_PARTIALLY_PRESENT && bitmapOffsets[Math.floor(block / chunkRatio)] === 0) {
        throw image.invalid(`VHDX block ${block} is partially present but its chunk has no sector bitmap`);
      }
    }
  }
  return { chunkRatio, payloadBlocks, states, offsets, bitmapOffsets };
}

/** A run of sectors that the block holds (`present`) or not, from a sector bitmap (LSB first). */
export interface SectorRun {
  present: boolean;
  first: number;
  count: number;
}

/** The sectors `first .. first + count - 1` described by `bitmap` (bit s = sector s) as runs of equal presence. */
export function sectorRuns(bitmap: Uint8Array, first: number, count: number): SectorRun[] {
  const bit = (s: number) => (((bitmap[s >>> 3] as number) >>> (s & 7)) & 1) === 1;
  const runs: SectorRun[] = [];
  const end = first + count;
  for (let s = first; s < end; ) {
    const present = bit(s);
    let next = s + 1;
    while (next < end) {
      if ((next & 7) === 0 && next + 8 <= end && bitmap[next >>> 3] === (present ? 0xff : 0)) {
        next += 8;
        continue;
      }
      if (bit(next) !== present) break;
      next++;
    }
    runs.push({ present, first: s, count: next - s });
    s = next;
  }
  return runs;
}

/**
 * The table of a disk that is not differencing (the inverse of {@link parseVhdxBat}): the
 * {@link batGeometry} entries, payload block i at entry i + floor(i / chunk ratio) with its state
 * and offset (a multiple of 1 MiB, 0 for a block not in the file), sector bitmap entries
 * NOT_PRESENT. Throws `RangeError` for a differencing layout, a table of the wrong length or
 * an offset not aligned to 1 MiB.
 */
export function encodeVhdxBat(bat: Pick<VhdxBat, 'states' | 'offsets'>, layout: BatLayout): Buffer {
  if (layout.hasParent) throw new RangeError('VHDX BATs of differencing disks (with sector bitmaps) are not written');
  const { chunkRatio, payloadBlocks, entries } = batGeometry(layout);
  if (bat.states.length !== payloadBlocks || bat.offsets.length !== payloadBlocks) throw new RangeError(`VHDX BAT of ${bat.states.length} blocks, the virtual size needs ${payloadBlocks}`);
  const out = Buffer.alloc(entries * BAT_ENTRY_SIZE);
  for (let block = 0; block < payloadBlocks; block++) {
    const offset = bat.offsets[block] as number;
    if (offset % MiB !== 0) throw new RangeError(`VHDX block ${block} at byte ${offset} is not aligned to 1 MiB`);
    const mib = offset / MiB;
    const at = (block + Math.floor(block / chunkRatio)) * BAT_ENTRY_SIZE;
    // bits 0-2 state, 20-63 offset in MiB: the low word holds the offset's low 12 bits.
    out.writeUInt32LE((mib % 4096) * 2 ** 20 + ((bat.states[block] as number) & 7), at);
    out.writeUInt32LE(Math.floor(mib / 4096), at + 4);
  }
  return out;
}
