/**
 * A pack (repository format 2): frames of new blocks, then a trailer describing them, stored
 * as one object `packs/<2 hex>/<64 hex>` whose id is the SHA-256 of its bytes. PLEASE DO NOT
 * CHANGE THESE VALUES. Integers little-endian.
 *
 * ```
 * pack
 * offset     size  field
 *      0        4  magic, ASCII "CFP1"
 *      4        4  reserved, 0
 *      8        …  frames, back to back: each an envelope (envelope.ts) of kind 9
 *      …        t  the trailer: an envelope of kind 10
 *  end − 8      4  t, the trailer's length, uint32
 *  end − 4      4  magic, ASCII "CFPE"
 *
 * frame plaintext (what a kind 9 envelope holds; zstd-compressed as a whole unless that does
 * not shrink it, then encrypted as one AES-256-GCM envelope)
 *      0        4  magic, ASCII "CFF1"
 *      4        4  chunk count n, uint32, 1..MAX_CHUNKS_PER_FRAME
 *      8     36·n  per chunk: id (32 bytes), length (uint32)
 *  8+36n        …  the chunks' plaintexts, back to back, in table order
 *
 * trailer plaintext (kind 10 envelope)
 *      0        4  magic, ASCII "CFT1"
 *      4        4  frame count f, uint32
 *      8        4  chunk count c, uint32
 *     12        4  reserved, 0
 *     16      8·f  per frame: offset of its envelope in the pack (uint32), its length (uint32)
 * 16+8f      44·c  per chunk: id (32), frame number (uint32), offset in the frame's plaintext
 *                  (uint32), length (uint32)
 * ```
 * Frames and trailers are not content-addressed: their envelopes authenticate with the
 * 32-byte id field of the AAD set to zeros (envelope.ts). What binds a chunk to its place is
 * the frame's own table, inside the authenticated plaintext: a reader checks that the table
 * names the chunk id it wants at the offset and length it expects. In an unencrypted
 * repository every chunk of a frame is rehashed when the frame is opened.
 */
import { CofferError } from '../../errors/index.js';

export const PACK_MAGIC = Buffer.from('CFP1', 'ascii');
export const PACK_END_MAGIC = Buffer.from('CFPE', 'ascii');
export const PACK_HEADER_SIZE = 8;
export const PACK_FOOTER_SIZE = 8;
export const FRAME_MAGIC = Buffer.from('CFF1', 'ascii');
export const FRAME_HEADER_SIZE = 8;
export const FRAME_TABLE_ENTRY_SIZE = 36;
export const TRAILER_MAGIC = Buffer.from('CFT1', 'ascii');
export const TRAILER_HEADER_SIZE = 16;
const TRAILER_FRAME_SIZE = 8;
const TRAILER_CHUNK_SIZE = 44;
/** At most this many chunks in a frame (a frame holds 1–8 blocks; 64 leaves room for small blocks). */
export const MAX_CHUNKS_PER_FRAME = 64;
/** The 32 zero bytes frames and trailers use as the id in their AAD. */
export const UNADDRESSED_ID: Buffer = Buffer.alloc(32);

/** One chunk of a frame's table. */
export interface FrameChunk {
  id: Buffer;
  /** Offset of its plaintext in the frame's plaintext. */
  offset: number;
  length: number;
}

/** The plaintext of a frame: the table, then the chunks in `data` cut by `lengths`. */
export function encodeFramePlaintext(chunks: readonly { id: Uint8Array; data: Uint8Array }[]): Buffer {
  if (chunks.length < 1 || chunks.length > MAX_CHUNKS_PER_FRAME) throw new RangeError(`a frame holds 1..${MAX_CHUNKS_PER_FRAME} chunks`);
  const tableEnd = FRAME_HEADER_SIZE + chunks.length * FRAME_TABLE_ENTRY_SIZE;
  const out = Buffer.allocUnsafe(tableEnd + chunks.reduce((sum, c) => sum + c.data.length, 0));
  FRAME_MAGIC.copy(out, 0);
  out.writeUInt32LE(chunks.length, 4);
  let at = tableEnd;
  chunks.forEach((chunk, i) => {
    if (chunk.id.length !== 32) throw new RangeError('a chunk id has 32 bytes');
    out.set(chunk.id, FRAME_HEADER_SIZE + i * FRAME_TABLE_ENTRY_SIZE);
    out.writeUInt32LE(chunk.data.length, FRAME_HEADER_SIZE + i * FRAME_TABLE_ENTRY_SIZE + 32);
    out.set(chunk.data, at);
    at += chunk.data.length;
  });
  return out;
}

/** The table of a frame's plaintext (ids are views); `E_CORRUPT_OBJECT` when malformed. */
export function decodeFrameTable(plaintext: Buffer, name: string): FrameChunk[] {
  const corrupt = (why: string) => new CofferError('E_CORRUPT_OBJECT', `frame ${name} is corrupt: ${why}`, { subject: { object: name } });
  if (plaintext.length < FRAME_HEADER_SIZE || !plaintext.subarray(0, 4).equals(FRAME_MAGIC)) throw corrupt('bad magic');
  const count = plaintext.readUInt32LE(4);
  if (count < 1 || count > MAX_CHUNKS_PER_FRAME) throw corrupt(`${count} chunks`);
  const tableEnd = FRAME_HEADER_SIZE + count * FRAME_TABLE_ENTRY_SIZE;
  if (plaintext.length < tableEnd) throw corrupt('truncated table');
  const chunks: FrameChunk[] = [];
  let at = tableEnd;
  for (let i = 0; i < count; i++) {
    const start = FRAME_HEADER_SIZE + i * FRAME_TABLE_ENTRY_SIZE;
    const length = plaintext.readUInt32LE(start + 32);
    chunks.push({ id: plaintext.subarray(start, start + 32), offset: at, length });
    at += length;
  }
  if (at !== plaintext.length) throw corrupt(`the table covers ${at} bytes of ${plaintext.length}`);
  return chunks;
}

/** What a trailer describes. */
export interface PackTrailer {
  frames: { offset: number; length: number }[];
  chunks: { id: Buffer; frame: number; offset: number; length: number }[];
}

/** The plaintext of a trailer. */
export function encodeTrailer(trailer: PackTrailer): Buffer {
  const out = Buffer.alloc(TRAILER_HEADER_SIZE + trailer.frames.length * TRAILER_FRAME_SIZE + trailer.chunks.length * TRAILER_CHUNK_SIZE);
  TRAILER_MAGIC.copy(out, 0);
  out.writeUInt32LE(trailer.frames.length, 4);
  out.writeUInt32LE(trailer.chunks.length, 8);
  let at = TRAILER_HEADER_SIZE;
  for (const frame of trailer.frames) {
    out.writeUInt32LE(frame.offset, at);
    out.writeUInt32LE(frame.length, at + 4);
    at += TRAILER_FRAME_SIZE;
  }
  for (const chunk of trailer.chunks) {
    chunk.id.copy(out, at);
    out.writeUInt32LE(chunk.frame, at + 32);
    out.writeUInt32LE(chunk.offset, at + 36);
    out.writeUInt32LE(chunk.length, at + 40);
    at += TRAILER_CHUNK_SIZE;
  }
  return out;
}

/** Parses a trailer's plaintext, bounds-checked against the pack's size. */
export function decodeTrailer(plaintext: Buffer, packSize: number, name: string): PackTrailer {
  const corrupt = (why: string) => new CofferError('E_CORRUPT_OBJECT', `the trailer of pack ${name} is corrupt: ${why}`, { subject: { object: name } });
  if (plaintext.length < TRAILER_HEADER_SIZE || !plaintext.subarray(0, 4).equals(TRAILER_MAGIC)) throw corrupt('bad magic');
  const frameCount = plaintext.readUInt32LE(4);
  const chunkCount = plaintext.readUInt32LE(8);
  if (plaintext.length !== TRAILER_HEADER_SIZE + frameCount * TRAILER_FRAME_SIZE + chunkCount * TRAILER_CHUNK_SIZE) throw corrupt('length does not match its counts');
  const frames: PackTrailer['frames'] = [];
  let at = TRAILER_HEADER_SIZE;
  for (let i = 0; i < frameCount; i++) {
    const offset = plaintext.readUInt32LE(at);
    const length = plaintext.readUInt32LE(at + 4);
    if (offset < PACK_HEADER_SIZE || length === 0 || offset + length > packSize - PACK_FOOTER_SIZE) throw corrupt(`frame ${i} lies outside the pack`);
    frames.push({ offset, length });
    at += TRAILER_FRAME_SIZE;
  }
  const chunks: PackTrailer['chunks'] = [];
  for (let i = 0; i < chunkCount; i++) {
    const frame = plaintext.readUInt32LE(at + 32);
    if (frame >= frameCount) throw corrupt(`chunk ${i} names frame ${frame} of ${frameCount}`);
    chunks.push({ id: plaintext.subarray(at, at + 32), frame, offset: plaintext.readUInt32LE(at + 36), length: plaintext.readUInt32LE(at + 40) });
    at += TRAILER_CHUNK_SIZE;
  }
  return { frames, chunks };
}

/** The 8-byte pack header. */
export function packHeader(): Buffer {
  const out = Buffer.alloc(PACK_HEADER_SIZE);
  PACK_MAGIC.copy(out, 0);
  return out;
}

/** The 8-byte footer after a trailer of `trailerLength` bytes. */
export function packFooter(trailerLength: number): Buffer {
  const out = Buffer.alloc(PACK_FOOTER_SIZE);
  out.writeUInt32LE(trailerLength, 0);
  PACK_END_MAGIC.copy(out, 4);
  return out;
}

/** Where the trailer lies, from the pack's last 8 bytes and its size. */
export function trailerRange(footer: Buffer, packSize: number, name: string): { offset: number; length: number } {
  const corrupt = (why: string) => new CofferError('E_CORRUPT_OBJECT', `pack ${name} is corrupt: ${why}`, { subject: { object: name } });
  if (footer.length !== PACK_FOOTER_SIZE || !footer.subarray(4, 8).equals(PACK_END_MAGIC)) throw corrupt('bad end magic');
  const length = footer.readUInt32LE(0);
  if (length === 0 || PACK_HEADER_SIZE + length + PACK_FOOTER_SIZE > packSize) throw corrupt(`trailer of ${length} bytes in ${packSize}`);
  return { offset: packSize - PACK_FOOTER_SIZE - length, length };
}
