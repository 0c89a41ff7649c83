/**
 * The start of a VHDX file (Microsoft's MS-VHDX, "VHDX Format Specification" v1.0): the file
 * type identifier, then two copies of the header, each updated in turn so one is always whole.
 * Little-endian throughout.
 *
 * ```
 * file offset   size   structure
 *           0  64 KiB  file type identifier: "vhdxfile" at 0, creator (UTF-16LE, 512 bytes) at 8
 *      64 KiB  64 KiB  header 1 (its first 4 KiB are the header)
 *     128 KiB  64 KiB  header 2
 *     192 KiB  64 KiB  region table 1 (vhdx-region-table.ts)
 *     256 KiB  64 KiB  region table 2
 *     320 KiB  ...     reserved up to 1 MiB; the log, BAT, metadata and blocks follow at
 *                      1 MiB multiples
 * ```
 * A header (4 KiB):
 * ```
 * offset size field
 *      0    4 signature "head"
 *      4    4 checksum: CRC-32C of the 4 KiB with this field zeroed
 *      8    8 sequence number: the valid header with the larger one is current
 *     16   16 file write GUID: changes when the file is first written after opening
 *     32   16 data write GUID: changes when the guest data is first written; a child's
 *              parent_linkage names its parent by it
 *     48   16 log GUID: zero when the log holds nothing to replay
 *     64    2 log version: 0
 *     66    2 version: 1
 *     68    4 log length: a multiple of 1 MiB
 *     72    8 log offset: a multiple of 1 MiB, at least 1 MiB
 *     80 4016 reserved
 * ```
 *
 * PLEASE DO NOT MODIFY THESE MAGIC VALUES: they are the format.
 */
import type { ImageFile } from '../image-file.js';
import { crc32c } from './crc32c.js';
import { guidBytes, NIL_GUID, readGuid } from './vhdx-guid.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const VHDX_SIGNATURE = 'vhdxfile';
export const VHDX_HEADER_SIGNATURE = 'head';
/** Offsets of the two header copies, and the bytes of each that the checksum covers. */
export const VHDX_HEADER_OFFSETS = [64 * KiB, 128 * KiB] as const;
export const VHDX_HEADER_SIZE = 4 * KiB;
/** Everything below 1 MiB is the identifier, headers and region tables: no region may lie there. */
export const VHDX_HEADER_SECTION_SIZE = MiB;

export const HEADER = {
  signature: 0,
  checksum: 4,
  sequenceNumber: 8,
  fileWriteGuid: 16,
  dataWriteGuid: 32,
  logGuid: 48,
  logVersion: 64,
  version: 66,
  logLength: 68,
  logOffset: 72,
  reserved: 80,
} as const;
if (HEADER.reserved + 4016 !== VHDX_HEADER_SIZE) throw new Error('VHDX header layout does not add up to 4 KiB');

const SUPPORTED_VERSION = 1;

/** How parsers report problems: the image's own error makers (they name the image). */
export type ImageComplaints = Pick<ImageFile, 'invalid' | 'unsupported'>;

/** A parsed, checked header. */
export interface VhdxHeader {
  sequenceNumber: bigint;
  fileWriteGuid: string;
  dataWriteGuid: string;
  /** {@link NIL_GUID} when the log holds nothing to replay. */
  logGuid: string;
  logVersion: number;
  version: number;
  logOffset: number;
  logLength: number;
}

/** True when `bytes` starts with the file type identifier's signature. */
export function hasVhdxSignature(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && Buffer.from(bytes.buffer, bytes.byteOffset, 8).toString('latin1') === VHDX_SIGNATURE;
}

/**
 * Parses and checks one 4 KiB header copy; returns a reason instead of throwing, since one
 * damaged copy is normal (a write interrupted) as long as the other is whole.
 */
export function parseVhdxHeader(bytes: Uint8Array): VhdxHeader | string {
  if (bytes.length !== VHDX_HEADER_SIZE) return `it is ${bytes.length} bytes, not ${VHDX_HEADER_SIZE}`;
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (b.toString('latin1', 0, 4) !== VHDX_HEADER_SIGNATURE) return `it lacks its "${VHDX_HEADER_SIGNATURE}" signature`;
  const checksum = b.readUInt32LE(HEADER.checksum);
  const computed = crc32c(b, HEADER.checksum);
  if (checksum !== computed) return `its checksum is 0x${hex32(checksum)} but its CRC-32C is 0x${hex32(computed)}`;
  const logOffset = b.readBigUInt64LE(HEADER.logOffset);
  const logLength = b.readUInt32LE(HEADER.logLength);
  if (logOffset > BigInt(Number.MAX_SAFE_INTEGER) || logOffset % BigInt(MiB) !== 0n || logLength % MiB !== 0) {
    return `its log (${logLength} bytes at ${logOffset}) is not aligned to 1 MiB`;
  }
  return {
    sequenceNumber: b.readBigUInt64LE(HEADER.sequenceNumber),
    fileWriteGuid: readGuid(b, HEADER.fileWriteGuid),
    dataWriteGuid: readGuid(b, HEADER.dataWriteGuid),
    logGuid: readGuid(b, HEADER.logGuid),
    logVersion: b.readUInt16LE(HEADER.logVersion),
    version: b.readUInt16LE(HEADER.version),
    logOffset: Number(logOffset),
    logLength,
  };
}

/**
 * The current header: of the two copies that parse, the one with the larger sequence number.
 * Both damaged is `E_IMAGE_INVALID`; a version other than 1 is `E_UNSUPPORTED_FORMAT`.
 */
export function chooseVhdxHeader(copies: readonly [Uint8Array, Uint8Array], image: ImageComplaints): VhdxHeader {
  const parsed = copies.map(parseVhdxHeader);
  const valid = parsed.filter((h): h is VhdxHeader => typeof h !== 'string');
  if (valid.length === 0) throw image.invalid(`both VHDX headers are damaged: header 1: ${String(parsed[0])}; header 2: ${String(parsed[1])}`);
  const current = valid.reduce((a, b) => (b.sequenceNumber > a.sequenceNumber ? b : a));
  if (current.version !== SUPPORTED_VERSION) throw image.unsupported(`VHDX version ${current.version}`);
  return current;
}

/** True when the header says the log has entries to replay. */
export function logNeedsReplay(header: VhdxHeader): boolean {
  return header.logGuid !== NIL_GUID;
}

export function hex32(value: number): string {
  return value.toString(16).padStart(8, '0');
}

/** Where the creator (UTF-16LE, at most 512 bytes) lies in the file type identifier. */
export const FILE_IDENTIFIER = { signature: 0, creator: 8, creatorSize: 512 } as const;

/**
 * The file type identifier (the first 64 KiB of the file): the signature and `creator`, a
 * free-form name of the program that made the file, cut to 256 UTF-16 code units.
 */
export function encodeVhdxFileIdentifier(creator: string): Buffer {
  const out = Buffer.alloc(64 * KiB);
  out.write(VHDX_SIGNATURE, FILE_IDENTIFIER.signature, 'latin1');
  Buffer.from(creator, 'utf16le').subarray(0, FILE_IDENTIFIER.creatorSize).copy(out, FILE_IDENTIFIER.creator);
  return out;
}

/**
 * One 4 KiB header copy with its checksum (the inverse of {@link parseVhdxHeader}). Throws
 * `RangeError` for a log not aligned to 1 MiB, which no reader would accept.
 */
export function encodeVhdxHeader(header: VhdxHeader): Buffer {
  if (header.logOffset % MiB !== 0 || header.logLength % MiB !== 0 || header.logOffset < VHDX_HEADER_SECTION_SIZE) {
    throw new RangeError(`VHDX log (${header.logLength} bytes at ${header.logOffset}) must be 1 MiB-aligned and past the first MiB`);
  }
  const out = Buffer.alloc(VHDX_HEADER_SIZE);
  out.write(VHDX_HEADER_SIGNATURE, HEADER.signature, 'latin1');
  out.writeBigUInt64LE(header.sequenceNumber, HEADER.sequenceNumber);
  guidBytes(header.fileWriteGuid).copy(out, HEADER.fileWriteGuid);
  guidBytes(header.dataWriteGuid).copy(out, HEADER.dataWriteGuid);
  guidBytes(header.logGuid).copy(out, HEADER.logGuid);
  out.writeUInt16LE(header.logVersion, HEADER.logVersion);
  out.writeUInt16LE(header.version, HEADER.version);
  out.writeUInt32LE(header.logLength, HEADER.logLength);
  out.writeBigUInt64LE(BigInt(header.logOffset), HEADER.logOffset);
  out.writeUInt32LE(crc32c(out, HEADER.checksum), HEADER.checksum);
  return out;
}
