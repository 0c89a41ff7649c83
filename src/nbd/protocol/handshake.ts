/**
 * Encoders and decoders of the NBD handshake (fixed newstyle), both directions. Pure: bytes in,
 * typed values out; a decoder throws `E_PROTOCOL` on anything malformed. All fields big-endian.
 *
 * Greeting, server → client (18 bytes):
 *   0  u64 NBDMAGIC (0x4e42444d41474943)
 *   8  u64 IHAVEOPT (0x49484156454f5054); oldstyle sends 0x00420281861253 here instead
 *  16  u16 handshake flags (FIXED_NEWSTYLE, NO_ZEROES)
 * Client flags, client → server: u32 (FIXED_NEWSTYLE, NO_ZEROES; any other bit is fatal).
 *
 * Option, client → server (16 bytes + data):
 *   0  u64 IHAVEOPT
 *   8  u32 option code
 *  12  u32 length of data, then the data
 *
 * Option reply, server → client (20 bytes + data):
 *   0  u64 0x3e889045565a9
 *   8  u32 the option replied to
 *  12  u32 reply type (ACK, SERVER, INFO, META_CONTEXT, or an error with bit 31 set)
 *  16  u32 length of data, then the data (an error's data is a message for a human)
 */
import { Cursor, encodeText, protocolError } from './cursor.js';
import { Info, NBD_CLISERV_MAGIC, NBD_MAGIC, NBD_OPTS_MAGIC, NBD_REP_MAGIC } from './constants.js';

export const GREETING_BYTES = 18;
export const CLIENT_FLAGS_BYTES = 4;
export const OPTION_HEADER_BYTES = 16;
export const OPTION_REPLY_HEADER_BYTES = 20;
/** After `NBD_OPT_EXPORT_NAME`: u64 size, u16 transmission flags, then 124 zero bytes unless NO_ZEROES. */
export const EXPORT_NAME_REPLY_BYTES = 10;
export const EXPORT_NAME_REPLY_ZEROES = 124;

/** The newstyle greeting. */
export function encodeGreeting(handshakeFlags: number): Buffer {
  const out = Buffer.alloc(GREETING_BYTES);
  out.writeBigUInt64BE(NBD_MAGIC, 0);
  out.writeBigUInt64BE(NBD_OPTS_MAGIC, 8);
  out.writeUInt16BE(handshakeFlags, 16);
  return out;
}

/** Reads the greeting; refuses oldstyle and anything that is not NBD. Returns the handshake flags. */
export function decodeGreeting(bytes: Uint8Array): number {
  const buf = asBuffer(bytes, GREETING_BYTES, 'greeting');
  if (buf.readBigUInt64BE(0) !== NBD_MAGIC) throw protocolError('the peer is not an NBD server (no NBDMAGIC in its greeting)');
  const second = buf.readBigUInt64BE(8);
  if (second === NBD_CLISERV_MAGIC) throw protocolError('the server speaks only the oldstyle handshake, which Coffer does not support');
  if (second !== NBD_OPTS_MAGIC) throw protocolError(`unknown handshake magic 0x${second.toString(16)}`);
  return buf.readUInt16BE(16);
}

export function encodeClientFlags(flags: number): Buffer {
  const out = Buffer.alloc(CLIENT_FLAGS_BYTES);
  out.writeUInt32BE(flags >>> 0, 0);
  return out;
}

export function decodeClientFlags(bytes: Uint8Array): number {
  return asBuffer(bytes, CLIENT_FLAGS_BYTES, 'client flags').readUInt32BE(0);
}

/** An option with its data. */
export function encodeOption(option: number, data: Uint8Array = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(OPTION_HEADER_BYTES);
  header.writeBigUInt64BE(NBD_OPTS_MAGIC, 0);
  header.writeUInt32BE(option, 8);
  header.writeUInt32BE(data.length, 12);
  return Buffer.concat([header, data]);
}

export interface OptionHeader {
  option: number;
  length: number;
}

export function decodeOptionHeader(bytes: Uint8Array): OptionHeader {
  const buf = asBuffer(bytes, OPTION_HEADER_BYTES, 'option header');
  if (buf.readBigUInt64BE(0) !== NBD_OPTS_MAGIC) throw protocolError('an option without the IHAVEOPT magic');
  return { option: buf.readUInt32BE(8), length: buf.readUInt32BE(12) };
}

/** An option reply with its data. */
export function encodeOptionReply(option: number, type: number, data: Uint8Array = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(OPTION_REPLY_HEADER_BYTES);
  header.writeBigUInt64BE(NBD_REP_MAGIC, 0);
  header.writeUInt32BE(option >>> 0, 8);
  header.writeUInt32BE(type >>> 0, 12);
  header.writeUInt32BE(data.length, 16);
  return Buffer.concat([header, data]);
}

export interface OptionReplyHeader {
  option: number;
  type: number;
  length: number;
}

export function decodeOptionReplyHeader(bytes: Uint8Array): OptionReplyHeader {
  const buf = asBuffer(bytes, OPTION_REPLY_HEADER_BYTES, 'option reply header');
  if (buf.readBigUInt64BE(0) !== NBD_REP_MAGIC) throw protocolError('an option reply without its magic');
  return { option: buf.readUInt32BE(8), type: buf.readUInt32BE(12), length: buf.readUInt32BE(16) };
}

/**
 * Data of `NBD_OPT_INFO` and `NBD_OPT_GO`:
 *   u32 name length, name, u16 number of information requests, u16 × n information types.
 */
export interface InfoRequest {
  name: string;
  infos: number[];
}

export function encodeInfoRequest(request: InfoRequest): Buffer {
  const name = encodeText(request.name);
  const out = Buffer.alloc(4 + name.length + 2 + 2 * request.infos.length);
  out.writeUInt32BE(name.length, 0);
  name.copy(out, 4);
  out.writeUInt16BE(request.infos.length, 4 + name.length);
  request.infos.forEach((info, i) => out.writeUInt16BE(info, 6 + name.length + 2 * i));
  return out;
}

export function decodeInfoRequest(data: Uint8Array): InfoRequest {
  const cursor = new Cursor(data, 'NBD_OPT_INFO/GO data');
  const name = cursor.string(cursor.u32());
  const count = cursor.u16();
  const infos: number[] = [];
  for (let i = 0; i < count; i++) infos.push(cursor.u16());
  cursor.end();
  return { name, infos };
}

/** Block size constraints (`NBD_INFO_BLOCK_SIZE`): minimum, preferred, maximum payload. */
export interface BlockSizes {
  minimum: number;
  preferred: number;
  maximumPayload: number;
}

/**
 * One `NBD_REP_INFO` payload: u16 information type, then
 * - EXPORT (length 12): u64 size, u16 transmission flags;
 * - NAME, DESCRIPTION (length ≥ 2): the text;
 * - BLOCK_SIZE (length 14): u32 minimum, u32 preferred, u32 maximum payload.
 */
export type InfoReply =
  | { type: typeof Info.EXPORT; size: number; flags: number }
  | { type: typeof Info.NAME; name: string }
  | { type: typeof Info.DESCRIPTION; description: string }
  | { type: typeof Info.BLOCK_SIZE; sizes: BlockSizes }
  | { type: 'unknown'; code: number };

export function encodeInfoReply(info: Exclude<InfoReply, { type: 'unknown' }>): Buffer {
  switch (info.type) {
    case Info.EXPORT: {
      const out = Buffer.alloc(12);
      out.writeUInt16BE(Info.EXPORT, 0);
      out.writeBigUInt64BE(BigInt(info.size), 2);
      out.writeUInt16BE(info.flags, 10);
      return out;
    }
    case Info.NAME:
    case Info.DESCRIPTION: {
      const head = Buffer.alloc(2);
      head.writeUInt16BE(info.type, 0);
      return Buffer.concat([head, encodeText(info.type === Info.NAME ? info.name : info.description)]);
    }
    case Info.BLOCK_SIZE: {
      const out = Buffer.alloc(14);
      out.writeUInt16BE(Info.BLOCK_SIZE, 0);
      out.writeUInt32BE(info.sizes.minimum, 2);
      out.writeUInt32BE(info.sizes.preferred, 6);
      out.writeUInt32BE(info.sizes.maximumPayload, 10);
      return out;
    }
  }
}

export function decodeInfoReply(data: Uint8Array): InfoReply {
  const cursor = new Cursor(data, 'NBD_REP_INFO');
  const type = cursor.u16();
  let info: InfoReply;
  switch (type) {
    case Info.EXPORT:
      info = { type, size: cursor.u64(), flags: cursor.u16() };
      break;
    case Info.NAME:
      info = { type, name: cursor.rest() };
      break;
    case Info.DESCRIPTION:
      info = { type, description: cursor.rest() };
      break;
    case Info.BLOCK_SIZE:
      info = { type, sizes: { minimum: cursor.u32(), preferred: cursor.u32(), maximumPayload: cursor.u32() } };
      break;
    default:
      return { type: 'unknown', code: type }; // the client MUST ignore types it does not know
  }
  cursor.end();
  return info;
}

/** `NBD_REP_SERVER`: u32 name length, name, then an optional description to the end. */
export interface ExportListing {
  name: string;
  description: string;
}

export function encodeServerReply(listing: ExportListing): Buffer {
  const name = encodeText(listing.name);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(name.length, 0);
  return Buffer.concat([head, name, encodeText(listing.description)]);
}

export function decodeServerReply(data: Uint8Array): ExportListing {
  const cursor = new Cursor(data, 'NBD_REP_SERVER');
  const name = cursor.string(cursor.u32());
  return { name, description: cursor.rest() };
}

/**
 * Data of `NBD_OPT_LIST_META_CONTEXT` and `NBD_OPT_SET_META_CONTEXT`:
 *   u32 export name length, export name, u32 number of queries, then per query u32 length + text.
 */
export interface MetaContextRequest {
  exportName: string;
  queries: string[];
}

export function encodeMetaContextRequest(request: MetaContextRequest): Buffer {
  const parts: Buffer[] = [lengthPrefixed(encodeText(request.exportName))];
  const count = Buffer.alloc(4);
  count.writeUInt32BE(request.queries.length, 0);
  parts.push(count);
  for (const query of request.queries) parts.push(lengthPrefixed(encodeText(query)));
  return Buffer.concat(parts);
}

/** Decodes the request; `maxQueries` bounds what a hostile client can make the server hold. */
export function decodeMetaContextRequest(data: Uint8Array, maxQueries: number): MetaContextRequest {
  const cursor = new Cursor(data, 'meta context request');
  const exportName = cursor.string(cursor.u32());
  const count = cursor.u32();
  if (count > maxQueries) throw protocolError(`meta context request: ${count} queries (at most ${maxQueries})`);
  const queries: string[] = [];
  for (let i = 0; i < count; i++) queries.push(cursor.string(cursor.u32()));
  cursor.end();
  return { exportName, queries };
}

/** `NBD_REP_META_CONTEXT`: u32 context id, then the context's name to the end. */
export interface MetaContext {
  id: number;
  name: string;
}

export function encodeMetaContextReply(context: MetaContext): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(context.id, 0);
  return Buffer.concat([head, encodeText(context.name)]);
}

export function decodeMetaContextReply(data: Uint8Array): MetaContext {
  const cursor = new Cursor(data, 'NBD_REP_META_CONTEXT');
  const id = cursor.u32();
  return { id, name: cursor.rest() };
}

/** The reply to `NBD_OPT_EXPORT_NAME`: u64 size, u16 transmission flags, 124 zeroes unless NO_ZEROES. */
export function encodeExportNameReply(size: number, flags: number, noZeroes: boolean): Buffer {
  const out = Buffer.alloc(EXPORT_NAME_REPLY_BYTES + (noZeroes ? 0 : EXPORT_NAME_REPLY_ZEROES));
  out.writeBigUInt64BE(BigInt(size), 0);
  out.writeUInt16BE(flags, 8);
  return out;
}

export function decodeExportNameReply(bytes: Uint8Array): { size: number; flags: number } {
  const cursor = new Cursor(bytes, 'NBD_OPT_EXPORT_NAME reply');
  return { size: cursor.u64(), flags: cursor.u16() };
}

function lengthPrefixed(bytes: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(bytes.length, 0);
  return Buffer.concat([head, bytes]);
}

function asBuffer(bytes: Uint8Array, length: number, what: string): Buffer {
  if (bytes.length !== length) throw protocolError(`${what}: ${bytes.length} bytes instead of ${length}`);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}
