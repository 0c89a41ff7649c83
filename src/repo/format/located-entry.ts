/**
 * A located entry (format 2): a chunk id plus where the chunk lies, so a reader fetches it
 * with one ranged read of its frame and no global index. Used by disk index pages of layout
 * 2 (magic `CFI2`, index-page.ts) and by index segments (index-segment.ts). PLEASE DO NOT
 * CHANGE THESE VALUES. Integers little-endian.
 *
 * ```
 * offset  size  field
 *      0    32  chunk id (HMAC-SHA256 / SHA-256 of the chunk's plaintext); 32 zero bytes
 *               with every other field zero: an all-zero block (nothing stored)
 *     32    32  pack id: SHA-256 of the pack's bytes (key packs/<2 hex>/<64 hex>)
 *     64     4  frame offset: where the frame's envelope starts in the pack, uint32
 *     68     4  frame length: the envelope's stored bytes, uint32
 *     72     4  chunk offset in the frame's plaintext (after its table), uint32
 *     76     4  chunk length (the block's bytes), uint32
 * ```
 * The location is a hint checked on every read: the frame's table (authenticated with the
 * frame) must name the same chunk id at the same offset and length.
 */
import { CofferError } from '../../errors/index.js';

export const LOCATED_ENTRY_SIZE = 80;
const OFFSET_PACK = 32;
const OFFSET_FRAME_OFFSET = 64;
const OFFSET_FRAME_LENGTH = 68;
const OFFSET_CHUNK_OFFSET = 72;
const OFFSET_CHUNK_LENGTH = 76;

/** Where a chunk lies: a frame of a pack, and a range of the frame's plaintext. */
export interface ChunkLocation {
  /** 32 bytes. */
  id: Buffer;
  /** 32 bytes. */
  pack: Buffer;
  frameOffset: number;
  frameLength: number;
  chunkOffset: number;
  chunkLength: number;
}

/** The 80-byte entry of a location. */
export function encodeLocatedEntry(location: ChunkLocation): Buffer {
  const out = Buffer.alloc(LOCATED_ENTRY_SIZE);
  writeLocatedEntry(out, 0, location);
  return out;
}

/** Writes a location's entry at `at` of `out`. */
export function writeLocatedEntry(out: Buffer, at: number, location: ChunkLocation): void {
  if (location.id.length !== 32 || location.pack.length !== 32) throw new RangeError('chunk and pack ids have 32 bytes');
  location.id.copy(out, at);
  location.pack.copy(out, at + OFFSET_PACK);
  out.writeUInt32LE(location.frameOffset, at + OFFSET_FRAME_OFFSET);
  out.writeUInt32LE(location.frameLength, at + OFFSET_FRAME_LENGTH);
  out.writeUInt32LE(location.chunkOffset, at + OFFSET_CHUNK_OFFSET);
  out.writeUInt32LE(location.chunkLength, at + OFFSET_CHUNK_LENGTH);
}

/** The location an 80-byte entry holds (views into `entry`); `E_CORRUPT_OBJECT` when malformed. */
export function decodeLocatedEntry(entry: Buffer, name: string): ChunkLocation {
  if (entry.length !== LOCATED_ENTRY_SIZE) throw new CofferError('E_CORRUPT_OBJECT', `${name}: a located entry has ${LOCATED_ENTRY_SIZE} bytes, not ${entry.length}`, { subject: { object: name } });
  const location = {
    id: entry.subarray(0, 32),
    pack: entry.subarray(OFFSET_PACK, OFFSET_PACK + 32),
    frameOffset: entry.readUInt32LE(OFFSET_FRAME_OFFSET),
    frameLength: entry.readUInt32LE(OFFSET_FRAME_LENGTH),
    chunkOffset: entry.readUInt32LE(OFFSET_CHUNK_OFFSET),
    chunkLength: entry.readUInt32LE(OFFSET_CHUNK_LENGTH),
  };
  if (location.frameLength === 0 || location.chunkLength === 0) throw new CofferError('E_CORRUPT_OBJECT', `${name}: a located entry with an empty frame or chunk`, { subject: { object: name } });
  return location;
}

/** An entry of either layout (32-byte id or 80-byte located entry): its chunk id. */
export function entryId(entry: Buffer): Buffer {
  return entry.length === 32 ? entry : entry.subarray(0, 32);
}

/** True when `entry` (either layout) is a located one. */
export function isLocatedEntry(entry: Uint8Array): boolean {
  return entry.length === LOCATED_ENTRY_SIZE;
}
