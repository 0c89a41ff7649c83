/**
 * The numbers of the NBD protocol (NetworkBlockDevice/nbd doc/proto.md, "Values"), shared by
 * Coffer's client and server. PLEASE DO NOT MODIFY THESE VALUES: they are the wire protocol.
 * Every field is big-endian. Only what Coffer speaks is here (no TLS, no extended headers).
 */

/** `NBDMAGIC`: the first 8 bytes a server sends, in every handshake style. */
export const NBD_MAGIC = 0x4e42444d41474943n;
/** `IHAVEOPT`: newstyle greeting, and the prefix of every option the client sends. */
export const NBD_OPTS_MAGIC = 0x49484156454f5054n;
/** Oldstyle greeting (`cliserv_magic`): Coffer refuses oldstyle, this is only recognised. */
export const NBD_CLISERV_MAGIC = 0x00420281861253n;
/** Prefix of every option reply in fixed newstyle. */
export const NBD_REP_MAGIC = 0x3e889045565a9n;
/** `NBD_REQUEST_MAGIC`: every transmission request. */
export const NBD_REQUEST_MAGIC = 0x25609513;
/** `NBD_SIMPLE_REPLY_MAGIC`: a simple reply. */
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
/** `NBD_STRUCTURED_REPLY_MAGIC`: one chunk of a structured reply. */
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** Handshake flags (16 bits, server → client). */
export const HandshakeFlag = {
  FIXED_NEWSTYLE: 1 << 0,
  NO_ZEROES: 1 << 1,
} as const;

/** Client flags (32 bits, client → server); any other bit makes the server hang up. */
export const ClientFlag = {
  FIXED_NEWSTYLE: 1 << 0,
  NO_ZEROES: 1 << 1,
} as const;

/** Transmission flags (16 bits, in `NBD_INFO_EXPORT` or after `NBD_OPT_EXPORT_NAME`). */
export const TransmissionFlag = {
  HAS_FLAGS: 1 << 0,
  READ_ONLY: 1 << 1,
  SEND_FLUSH: 1 << 2,
  SEND_FUA: 1 << 3,
  ROTATIONAL: 1 << 4,
  SEND_TRIM: 1 << 5,
  SEND_WRITE_ZEROES: 1 << 6,
  SEND_DF: 1 << 7,
  CAN_MULTI_CONN: 1 << 8,
  SEND_CACHE: 1 << 10,
  SEND_FAST_ZERO: 1 << 11,
} as const;

/** Option codes (32 bits, in the option header). */
export const Option = {
  EXPORT_NAME: 1,
  ABORT: 2,
  LIST: 3,
  STARTTLS: 5,
  INFO: 6,
  GO: 7,
  STRUCTURED_REPLY: 8,
  LIST_META_CONTEXT: 9,
  SET_META_CONTEXT: 10,
} as const;

/** Option reply types (32 bits); errors have bit 31 set. */
export const OptionReply = {
  ACK: 1,
  SERVER: 2,
  INFO: 3,
  META_CONTEXT: 4,
  ERR_UNSUP: 0x80000001,
  ERR_POLICY: 0x80000002,
  ERR_INVALID: 0x80000003,
  ERR_PLATFORM: 0x80000004,
  ERR_TLS_REQD: 0x80000005,
  ERR_UNKNOWN: 0x80000006,
  ERR_SHUTDOWN: 0x80000007,
  ERR_BLOCK_SIZE_REQD: 0x80000008,
  ERR_TOO_BIG: 0x80000009,
} as const;

/** True for an option reply type that reports an error (bit 31). */
export function isOptionReplyError(type: number): boolean {
  return type >= 0x80000000;
}

/** Information types of `NBD_REP_INFO` (16 bits) and of the requests in INFO/GO. */
export const Info = {
  EXPORT: 0,
  NAME: 1,
  DESCRIPTION: 2,
  BLOCK_SIZE: 3,
} as const;

/** Command types (16 bits, in the request header). */
export const Command = {
  READ: 0,
  WRITE: 1,
  DISC: 2,
  FLUSH: 3,
  TRIM: 4,
  CACHE: 5,
  WRITE_ZEROES: 6,
  BLOCK_STATUS: 7,
} as const;

/** Command flags (16 bits, in the request header). */
export const CommandFlag = {
  FUA: 1 << 0,
  NO_HOLE: 1 << 1,
  DF: 1 << 2,
  REQ_ONE: 1 << 3,
  FAST_ZERO: 1 << 4,
} as const;

/** Structured reply flags (16 bits). */
export const ReplyFlag = {
  DONE: 1 << 0,
} as const;

/** Structured reply chunk types (16 bits); error chunks have bit 15 set. */
export const ChunkType = {
  NONE: 0,
  OFFSET_DATA: 1,
  OFFSET_HOLE: 2,
  BLOCK_STATUS: 5,
  ERROR: 0x8001,
  ERROR_OFFSET: 0x8002,
} as const;

/** True for a chunk type in the error category (bit 15), known or not. */
export function isErrorChunk(type: number): boolean {
  return (type & 0x8000) !== 0;
}

/** Error values of replies (32 bits). */
export const NbdErrno = {
  EPERM: 1,
  EIO: 5,
  ENOMEM: 12,
  EINVAL: 22,
  ENOSPC: 28,
  EOVERFLOW: 75,
  ENOTSUP: 95,
  ESHUTDOWN: 108,
} as const;

/** Flags of the `base:allocation` metadata context. */
export const AllocationFlag = {
  HOLE: 1 << 0,
  ZERO: 1 << 1,
} as const;

/** Flag of QEMU's `qemu:dirty-bitmap:NAME` context (qemu docs/interop/nbd.txt). */
export const DirtyBitmapFlag = {
  DIRTY: 1 << 0,
} as const;

/** The one metadata context of the `base:` namespace. */
export const BASE_ALLOCATION = 'base:allocation';
/** Prefix of QEMU's dirty bitmap contexts. */
export const QEMU_DIRTY_BITMAP_PREFIX = 'qemu:dirty-bitmap:';

/** Strings (export names, messages) MUST NOT exceed this many bytes. */
export const MAX_STRING_BYTES = 4096;
/** The default and interoperable maximum payload of a request (2^25). */
export const DEFAULT_MAX_PAYLOAD = 32 * 1024 * 1024;
/** The well-known TCP port of NBD. */
export const NBD_DEFAULT_PORT = 10809;

/** A human name for an option code, for messages. */
export function optionName(code: number): string {
  return nameOf(Option, code, 'NBD_OPT_');
}

/** A human name for an option reply type, for messages. */
export function optionReplyName(code: number): string {
  return nameOf(OptionReply, code, 'NBD_REP_');
}

/** A human name for an error value, for messages. */
export function errnoName(code: number): string {
  return nameOf(NbdErrno, code, 'NBD_');
}

/** A human name for a command type, for messages. */
export function commandName(code: number): string {
  return nameOf(Command, code, 'NBD_CMD_');
}

function nameOf(table: Record<string, number>, code: number, prefix: string): string {
  for (const [name, value] of Object.entries(table)) if (value === code) return `${prefix}${name}`;
  return `${prefix}${code >>> 0} (unknown)`;
}
