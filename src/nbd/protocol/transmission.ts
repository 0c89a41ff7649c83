/**
 * Encoders and decoders of the NBD transmission phase, both directions. Pure; decoders throw
 * `E_PROTOCOL` on malformed input. All fields big-endian.
 *
 * Request, client → server (28 bytes, then `length` bytes of data for NBD_CMD_WRITE):
 *   0  u32 0x25609513 (NBD_REQUEST_MAGIC)
 *   4  u16 command flags
 *   6  u16 command type
 *   8  u64 cookie (opaque; the reply echoes it)
 *  16  u64 offset
 *  24  u32 length
 *
 * Simple reply, server → client (16 bytes, then `length` bytes of data for a successful READ):
 *   0  u32 0x67446698 (NBD_SIMPLE_REPLY_MAGIC)
 *   4  u32 error (0: success)
 *   8  u64 cookie
 *
 * Structured reply chunk, server → client (20 bytes, then `length` bytes of payload):
 *   0  u32 0x668e33ef (NBD_STRUCTURED_REPLY_MAGIC)
 *   4  u16 flags (DONE on the last chunk of a reply)
 *   6  u16 chunk type
 *   8  u64 cookie
 *  16  u32 payload length
 *
 * Chunk payloads:
 *   OFFSET_DATA   u64 offset, then the data (length − 8 ≥ 1 bytes)
 *   OFFSET_HOLE   u64 offset, u32 hole size (≥ 1)                 (length 12)
 *   BLOCK_STATUS  u32 context id, then n ≥ 1 × (u32 extent length ≥ 1, u32 status flags)
 *   ERROR         u32 error (≠ 0), u16 message length, message
 *   ERROR_OFFSET  u32 error (≠ 0), u16 message length, message, u64 offset
 */
import { clampU64, Cursor, encodeText, protocolError } from './cursor.js';
import { ChunkType, NBD_REQUEST_MAGIC, NBD_SIMPLE_REPLY_MAGIC, NBD_STRUCTURED_REPLY_MAGIC } from './constants.js';

export const REQUEST_BYTES = 28;
export const SIMPLE_REPLY_BYTES = 16;
export const CHUNK_HEADER_BYTES = 20;
/** Both reply kinds start with a u32 magic that tells them apart. */
export const REPLY_MAGIC_BYTES = 4;
export const OFFSET_HOLE_BYTES = 12;
export const BLOCK_DESCRIPTOR_BYTES = 8;

export interface RequestHeader {
  flags: number;
  type: number;
  cookie: bigint;
  /** Clamped to `Number.MAX_SAFE_INTEGER` when the wire value is larger. */
  offset: number;
  length: number;
}

export function encodeRequest(request: RequestHeader): Buffer {
  const out = Buffer.alloc(REQUEST_BYTES);
  out.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
  out.writeUInt16BE(request.flags, 4);
  out.writeUInt16BE(request.type, 6);
  out.writeBigUInt64BE(request.cookie, 8);
  out.writeBigUInt64BE(BigInt(request.offset), 16);
  out.writeUInt32BE(request.length, 24);
  return out;
}

export function decodeRequest(bytes: Uint8Array): RequestHeader {
  const buf = exactly(bytes, REQUEST_BYTES, 'request header');
  const magic = buf.readUInt32BE(0);
  if (magic !== NBD_REQUEST_MAGIC) throw protocolError(`a request with magic 0x${magic.toString(16)}`);
  return {
    flags: buf.readUInt16BE(4),
    type: buf.readUInt16BE(6),
    cookie: buf.readBigUInt64BE(8),
    offset: clampU64(buf.readBigUInt64BE(16)),
    length: buf.readUInt32BE(24),
  };
}

export interface SimpleReply {
  error: number;
  cookie: bigint;
}

export function encodeSimpleReply(reply: SimpleReply): Buffer {
  const out = Buffer.alloc(SIMPLE_REPLY_BYTES);
  out.writeUInt32BE(NBD_SIMPLE_REPLY_MAGIC, 0);
  out.writeUInt32BE(reply.error, 4);
  out.writeBigUInt64BE(reply.cookie, 8);
  return out;
}

/** Decodes the 12 bytes after the magic of a simple reply. */
export function decodeSimpleReplyRest(bytes: Uint8Array): SimpleReply {
  const buf = exactly(bytes, SIMPLE_REPLY_BYTES - REPLY_MAGIC_BYTES, 'simple reply');
  return { error: buf.readUInt32BE(0), cookie: buf.readBigUInt64BE(4) };
}

export interface ChunkHeader {
  flags: number;
  type: number;
  cookie: bigint;
  length: number;
}

export function encodeChunkHeader(chunk: ChunkHeader): Buffer {
  const out = Buffer.alloc(CHUNK_HEADER_BYTES);
  out.writeUInt32BE(NBD_STRUCTURED_REPLY_MAGIC, 0);
  out.writeUInt16BE(chunk.flags, 4);
  out.writeUInt16BE(chunk.type, 6);
  out.writeBigUInt64BE(chunk.cookie, 8);
  out.writeUInt32BE(chunk.length, 16);
  return out;
}

/** Decodes the 16 bytes after the magic of a structured reply chunk. */
export function decodeChunkHeaderRest(bytes: Uint8Array): ChunkHeader {
  const buf = exactly(bytes, CHUNK_HEADER_BYTES - REPLY_MAGIC_BYTES, 'structured reply chunk header');
  return { flags: buf.readUInt16BE(0), type: buf.readUInt16BE(2), cookie: buf.readBigUInt64BE(4), length: buf.readUInt32BE(12) };
}

/** The 8-byte offset that opens an OFFSET_DATA payload (the data follows). */
export function encodeOffset(offset: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(BigInt(offset), 0);
  return out;
}

export function decodeOffset(bytes: Uint8Array): number {
  return new Cursor(bytes, 'chunk offset').u64();
}

export interface Hole {
  offset: number;
  length: number;
}

export function encodeHole(hole: Hole): Buffer {
  const out = Buffer.alloc(OFFSET_HOLE_BYTES);
  out.writeBigUInt64BE(BigInt(hole.offset), 0);
  out.writeUInt32BE(hole.length, 8);
  return out;
}

export function decodeHole(bytes: Uint8Array): Hole {
  const cursor = new Cursor(bytes, 'NBD_REPLY_TYPE_OFFSET_HOLE');
  const hole = { offset: cursor.u64(), length: cursor.u32() };
  cursor.end();
  if (hole.length === 0) throw protocolError('an OFFSET_HOLE chunk of zero bytes');
  return hole;
}

/** One block status descriptor: the next `length` bytes have status `flags`. */
export interface BlockDescriptor {
  length: number;
  flags: number;
}

export interface BlockStatus {
  contextId: number;
  descriptors: BlockDescriptor[];
}

export function encodeBlockStatus(status: BlockStatus): Buffer {
  const out = Buffer.alloc(4 + BLOCK_DESCRIPTOR_BYTES * status.descriptors.length);
  out.writeUInt32BE(status.contextId, 0);
  status.descriptors.forEach((d, i) => {
    out.writeUInt32BE(d.length, 4 + 8 * i);
    out.writeUInt32BE(d.flags >>> 0, 8 + 8 * i);
  });
  return out;
}

export function decodeBlockStatus(bytes: Uint8Array): BlockStatus {
  if (bytes.length < 4 + BLOCK_DESCRIPTOR_BYTES || (bytes.length - 4) % BLOCK_DESCRIPTOR_BYTES !== 0) {
    throw protocolError(`a BLOCK_STATUS chunk of ${bytes.length} bytes (must be 4 + a positive multiple of 8)`);
  }
  const cursor = new Cursor(bytes, 'NBD_REPLY_TYPE_BLOCK_STATUS');
  const contextId = cursor.u32();
  const descriptors: BlockDescriptor[] = [];
  while (cursor.remaining > 0) {
    const d = { length: cursor.u32(), flags: cursor.u32() };
    if (d.length === 0) throw protocolError('a block status descriptor of zero bytes');
    descriptors.push(d);
  }
  return { contextId, descriptors };
}

/** An error chunk: ERROR (no offset) or ERROR_OFFSET, or an unknown type with bit 15 set. */
export interface ErrorChunk {
  error: number;
  message: string;
  offset?: number;
}

export function encodeErrorChunk(chunk: ErrorChunk): Buffer {
  const message = encodeText(chunk.message);
  const out = Buffer.alloc(6 + message.length + (chunk.offset === undefined ? 0 : 8));
  out.writeUInt32BE(chunk.error, 0);
  out.writeUInt16BE(message.length, 4);
  message.copy(out, 6);
  if (chunk.offset !== undefined) out.writeBigUInt64BE(BigInt(chunk.offset), 6 + message.length);
  return out;
}

/** Decodes an error chunk of `type`; for unknown error types, only error and message are read. */
export function decodeErrorChunk(type: number, bytes: Uint8Array): ErrorChunk {
  const cursor = new Cursor(bytes, 'error chunk');
  const error = cursor.u32();
  const messageLength = cursor.u16();
  if (messageLength > cursor.remaining) throw protocolError(`an error chunk whose message (${messageLength} bytes) overruns it`);
  // A message is for humans: decode it leniently so a bad byte in it cannot hide the error.
  const message = Buffer.from(cursor.bytes(messageLength)).toString('utf8').replace(/\0/g, '');
  if (error === 0) throw protocolError('an error chunk with error 0');
  if (type === ChunkType.ERROR) {
    cursor.end();
    return { error, message };
  }
  if (type === ChunkType.ERROR_OFFSET) {
    const offset = cursor.u64();
    cursor.end();
    return { error, message, offset };
  }
  return { error, message };
}

function exactly(bytes: Uint8Array, length: number, what: string): Buffer {
  if (bytes.length !== length) throw protocolError(`${what}: ${bytes.length} bytes instead of ${length}`);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}
