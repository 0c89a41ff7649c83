/**
 * The VHDX log (MS-VHDX 2.3): a circular buffer at the header's log offset holding metadata
 * updates that must be replayed before the BAT and metadata can be trusted, when the header's
 * log GUID is set. Entries are whole 4 KiB sectors, little-endian.
 *
 * Entry header (64 bytes), then descriptors (32 bytes each) padded to 4 KiB, then one 4 KiB data
 * sector per data descriptor:
 * ```
 * offset size field
 *      0    4 signature "loge"
 *      4    4 checksum: CRC-32C of the whole entry with this field zeroed
 *      8    4 entry length: a multiple of 4 KiB
 *     12    4 tail: log offset of the first entry of the sequence this entry ends
 *     16    8 sequence number: consecutive within a sequence
 *     24    4 descriptor count
 *     28    4 reserved
 *     32   16 log GUID: the header's log GUID
 *     48    8 flushed file offset: the file was at least this long when the entry was written
 *     56    8 last file offset: the file size the entry's writes need
 * ```
 * Descriptors:
 * ```
 * zero: 0 "zero", 4 reserved, 8 u64 zero length, 16 u64 file offset, 24 u64 sequence number
 * data: 0 "desc", 4 u32 trailing bytes, 8 u64 leading bytes, 16 u64 file offset, 24 u64 sequence number
 * ```
 * Data sector: 0 "data", 4 u32 sequence high, 8 4084 bytes of data, 4092 u32 sequence low; the
 * 4 KiB written is the descriptor's 8 leading bytes, those 4084 bytes, then its 4 trailing bytes.
 *
 * The active sequence is the valid sequence whose last entry (head) has the highest sequence
 * number: its entries run, valid and consecutive, from the head's tail to the head. Replaying
 * it writes its descriptors in order.
 *
 * PLEASE DO NOT MODIFY THESE MAGIC VALUES: they are the format.
 */
import { crc32c } from './crc32c.js';
import { readGuid } from './vhdx-guid.js';
import type { ImageComplaints } from './vhdx-header.js';

export const LOG_SECTOR = 4096;
export const LOG_ENTRY = { signature: 0, checksum: 4, entryLength: 8, tail: 12, sequenceNumber: 16, descriptorCount: 24, reserved: 28, logGuid: 32, flushedFileOffset: 48, lastFileOffset: 56, descriptors: 64 } as const;
export const LOG_DESCRIPTOR = { signature: 0, trailingBytes: 4, zeroLength: 8, leadingBytes: 8, fileOffset: 16, sequenceNumber: 24, size: 32 } as const;
export const LOG_DATA = { signature: 0, sequenceHigh: 4, data: 8, sequenceLow: 4092 } as const;
/** Entry validations followed while looking for the active sequence, before the log is called tangled. */
const MAX_STEPS = 1_000_000;

/** One write the log replays: 4 KiB of data, or `length` zero bytes, at `fileOffset`. */
export type LogWrite = { fileOffset: number; data: Buffer } | { fileOffset: number; zeroLength: number };

/** The active sequence's writes, in order, and the file sizes it requires. */
export interface LogReplay {
  writes: LogWrite[];
  flushedFileOffset: number;
  lastFileOffset: number;
}

interface Entry {
  at: number;
  length: number;
  tail: number;
  sequence: bigint;
  flushedFileOffset: number;
  lastFileOffset: number;
  writes: LogWrite[];
}

/**
 * Finds and decodes the active sequence of `log` (the whole log region). Returns null when
 * no valid sequence exists (nothing to replay). Throws `E_IMAGE_INVALID` for a log too
 * tangled to search in bounded time.
 */
export function readVhdxLog(log: Uint8Array, options: { logGuid: string; image: ImageComplaints }): LogReplay | null {
  const { logGuid, image } = options;
  const b = Buffer.from(log.buffer, log.byteOffset, log.length);
  const cache = new Map<number, Entry | null>();
  let steps = 0;
  const entryAt = (at: number): Entry | null => {
    if (++steps > MAX_STEPS) throw image.invalid('VHDX log is too tangled to find its active sequence');
    let entry = cache.get(at);
    if (entry === undefined) {
      entry = parseEntry(b, at, logGuid);
      cache.set(at, entry);
    }
    return entry;
  };
  const candidates: Entry[] = [];
  for (let at = 0; at + LOG_SECTOR <= b.length; at += LOG_SECTOR) {
    const entry = entryAt(at);
    if (entry !== null) candidates.push(entry);
  }
  candidates.sort((x, y) => (x.sequence < y.sequence ? 1 : x.sequence > y.sequence ? -1 : 0));
  for (const head of candidates) {
    const sequence: Entry[] = [];
    let at = head.tail;
    let expected: bigint | null = null;
    while (sequence.length <= b.length / LOG_SECTOR) {
      const entry = at % LOG_SECTOR === 0 && at < b.length ? entryAt(at) : null;
      if (entry === null || (expected !== null && entry.sequence !== expected)) break;
      sequence.push(entry);
      if (entry === head) {
        return {
          writes: sequence.flatMap((e) => e.writes),
          flushedFileOffset: head.flushedFileOffset,
          lastFileOffset: head.lastFileOffset,
        };
      }
      expected = entry.sequence + 1n;
      at = (entry.at + entry.length) % b.length;
    }
  }
  return null;
}

/** A valid entry at `at` (signature, bounds, checksum, GUID, descriptors and data sectors), else null. */
function parseEntry(b: Buffer, at: number, logGuid: string): Entry | null {
  if (at + LOG_SECTOR > b.length || b.toString('latin1', at, at + 4) !== 'loge') return null;
  const length = b.readUInt32LE(at + LOG_ENTRY.entryLength);
  const count = b.readUInt32LE(at + LOG_ENTRY.descriptorCount);
  const tail = b.readUInt32LE(at + LOG_ENTRY.tail);
  if (length === 0 || length % LOG_SECTOR !== 0 || at + length > b.length || tail % LOG_SECTOR !== 0 || tail >= b.length) return null;
  const descriptorBytes = Math.ceil((LOG_ENTRY.descriptors + count * LOG_DESCRIPTOR.size) / LOG_SECTOR) * LOG_SECTOR;
  if (descriptorBytes > length) return null;
  const bytes = b.subarray(at, at + length);
  if (bytes.readUInt32LE(LOG_ENTRY.checksum) !== crc32c(bytes, LOG_ENTRY.checksum)) return null;
  if (readGuid(bytes, LOG_ENTRY.logGuid) !== logGuid) return null;
  const sequence = bytes.readBigUInt64LE(LOG_ENTRY.sequenceNumber);
  const u64 = (value: bigint): number | null => (value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : null);
  const flushedFileOffset = u64(bytes.readBigUInt64LE(LOG_ENTRY.flushedFileOffset));
  const lastFileOffset = u64(bytes.readBigUInt64LE(LOG_ENTRY.lastFileOffset));
  if (flushedFileOffset === null || lastFileOffset === null) return null;
  const writes: LogWrite[] = [];
  let dataAt = descriptorBytes;
  for (let i = 0; i < count; i++) {
    const d = LOG_ENTRY.descriptors + i * LOG_DESCRIPTOR.size;
    const kind = bytes.toString('latin1', d, d + 4);
    const fileOffset = u64(bytes.readBigUInt64LE(d + LOG_DESCRIPTOR.fileOffset));
    if (fileOffset === null || fileOffset % LOG_SECTOR !== 0 || bytes.readBigUInt64LE(d + LOG_DESCRIPTOR.sequenceNumber) !== sequence) return null;
    if (kind === 'zero') {
      const zeroLength = u64(bytes.readBigUInt64LE(d + LOG_DESCRIPTOR.zeroLength));
      if (zeroLength === null || zeroLength % LOG_SECTOR !== 0 || fileOffset + zeroLength > Number.MAX_SAFE_INTEGER) return null;
      writes.push({ fileOffset, zeroLength });
    } else if (kind === 'desc') {
      if (dataAt + LOG_SECTOR > length) return null;
      const sector = bytes.subarray(dataAt, dataAt + LOG_SECTOR);
      const seq = (BigInt(sector.readUInt32LE(LOG_DATA.sequenceHigh)) << 32n) | BigInt(sector.readUInt32LE(LOG_DATA.sequenceLow));
      if (sector.toString('latin1', 0, 4) !== 'data' || seq !== sequence) return null;
      const data = Buffer.alloc(LOG_SECTOR);
      bytes.copy(data, 0, d + LOG_DESCRIPTOR.leadingBytes, d + LOG_DESCRIPTOR.leadingBytes + 8);
      sector.copy(data, 8, LOG_DATA.data, LOG_DATA.sequenceLow);
      bytes.copy(data, LOG_DATA.sequenceLow, d + LOG_DESCRIPTOR.trailingBytes, d + LOG_DESCRIPTOR.trailingBytes + 4);
      writes.push({ fileOffset, data });
      dataAt += LOG_SECTOR;
    } else {
      return null;
    }
  }
  return { at, length, tail, sequence, flushedFileOffset, lastFileOffset, writes };
}
