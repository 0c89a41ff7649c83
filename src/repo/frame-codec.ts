import { timingSafeEqual } from 'node:crypto';
import { CofferError } from '../errors/index.js';
import type { ObjectCodec } from './codec.js';
import { ObjectKind } from './format/envelope.js';
import { decodeFrameTable, UNADDRESSED_ID, type FrameChunk } from './format/pack.js';

/**
 * Sealing and opening pack frames (format/pack.ts), run on the codec workers: a frame is the
 * zstd compression of up to 8 consecutive new blocks with their table, in one AES-256-GCM
 * envelope of kind 9 (stored raw when zstd does not shrink it: codec.ts decides per object).
 */

/**
 * Seals the frame plaintext in `slot[0, length)` (laid out by frame-slot.ts) in place: the
 * envelope is written from `slot[0]`; returns its length.
 */
export function sealFrameInPlace(codec: ObjectCodec, slot: Uint8Array, length: number): number {
  if (length > slot.length) throw new RangeError('frame longer than its slot');
  return codec.sealInto(slot.subarray(0, length), ObjectKind.packFrame, UNADDRESSED_ID, slot);
}

/**
 * Opens a frame's envelope: authenticates and decompresses it, parses its table, and (with
 * `rehash`, and always in an unencrypted repository, where nothing else checks the bytes)
 * recomputes every chunk's id from its plaintext. `E_CORRUPT_OBJECT` for any failure. With
 * `scratch`, the plaintext is the codec's reused buffer, valid until its next open; with
 * `into`, it is decompressed straight into that memory.
 */
export function openFrame(codec: ObjectCodec, blob: Uint8Array, name: string, rehash: boolean, scratch = false, into?: Uint8Array): { plaintext: Buffer; table: FrameChunk[] } {
  const plaintext = codec.open(blob, ObjectKind.packFrame, name, UNADDRESSED_ID, { rehash: false, unaddressed: true, scratch, ...(into === undefined ? {} : { into }) });
  const table = decodeFrameTable(plaintext, name);
  if (rehash || !codec.encrypted) {
    for (const chunk of table) {
      const actual = codec.idOf(plaintext.subarray(chunk.offset, chunk.offset + chunk.length));
      if (!timingSafeEqual(actual, chunk.id)) {
        throw new CofferError('E_CORRUPT_OBJECT', `frame ${name} is corrupt: chunk ${chunk.id.toString('hex')} does not match its content`, { subject: { object: name } });
      }
    }
  }
  return { plaintext, table };
}

/**
 * The range of chunk `id` in an opened frame, checked against the frame's table: the entry's
 * location is a hint, the table (authenticated with the frame) is the truth.
 */
export function chunkInFrame(table: readonly FrameChunk[], id: Uint8Array, offset: number, length: number, name: string): void {
  const found = table.find((chunk) => chunk.offset === offset);
  if (found === undefined || found.length !== length || !found.id.equals(id)) {
    throw new CofferError('E_CORRUPT_OBJECT', `frame ${name} does not hold chunk ${Buffer.from(id).toString('hex')} at offset ${offset} (${length} bytes)`, { subject: { object: name } });
  }
}
