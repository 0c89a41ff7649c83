/**
 * A digest record, version 1 (docs/repository-format.md §18): a signed list of what the key
 * holder stored and deleted, so that whoever holds only the storage can prove that every
 * object's stored bytes are the ones written, without being able to read them. Plaintext
 * (not an envelope), stored under `digests/<record id>`, the record id being the SHA-256 of
 * the whole record, 64 hex. Immutable: a record is written once and never rewritten.
 *
 * | offset | size | field |
 * |-------:|-----:|-------|
 * | 0      | 4    | magic, ASCII `CFD1` |
 * | 4      | 1    | version, `1` |
 * | 5      | 3    | reserved, zero |
 * | 8      | 8    | time: unix milliseconds, uint64 LE (when the record was written) |
 * | 16     | 32   | the signer's Ed25519 public key (raw) |
 * | 48     | 4    | entry count n, uint32 LE, 1..{@link MAX_DIGEST_ENTRIES} |
 * | 52     | …    | n entries (below) |
 * | end−64 | 64   | Ed25519 signature of bytes 0 .. end−64 |
 *
 * Each entry:
 *
 * | size | field |
 * |-----:|-------|
 * | 1    | op: `1` stored, `2` deleted |
 * | 2    | key length k, uint16 LE, 1..1024 |
 * | k    | the backend key, UTF-8 |
 * | 8    | op 1 only: the stored length in bytes, uint64 LE |
 * | 32   | op 1 only: SHA-256 of the stored bytes |
 *
 * A key appears at most once per record.
 */
import { CofferError } from '../../errors/index.js';

export const DIGEST_RECORD_MAGIC = Buffer.from('CFD1', 'ascii');
export const DIGEST_RECORD_VERSION = 1;
/** Offsets of the fixed header. */
const OFF_VERSION = 4;
const OFF_TIME = 8;
const OFF_SIGNER = 16;
const OFF_COUNT = 48;
export const DIGEST_HEADER_SIZE = 52;
export const DIGEST_SIGNATURE_SIZE = 64;
/** Entries per record: 65,536 entries is at most ~7 MiB, 16 GiB of chunks at the default block size. */
export const MAX_DIGEST_ENTRIES = 65_536;
export const MAX_DIGEST_KEY_LENGTH = 1024;

export const DigestOp = { stored: 1, deleted: 2 } as const;

/** One entry of a record. */
export type DigestEntry =
  | { op: 'stored'; key: string; length: number; sha256: Buffer }
  | { op: 'deleted'; key: string };

/** A parsed record: the signed bytes and the signature are kept to be checked. */
export interface DigestRecord {
  version: 1;
  timeMs: number;
  /** The raw Ed25519 public key of the signer. */
  signer: Buffer;
  entries: DigestEntry[];
  /** Bytes 0 .. end−64, which the signature covers. */
  signed: Buffer;
  signature: Buffer;
}

/** The bytes of a record before its signature (bytes 0 .. end−64). */
export function encodeDigestRecordBody(timeMs: number, signer: Uint8Array, entries: readonly DigestEntry[]): Buffer {
  if (entries.length < 1 || entries.length > MAX_DIGEST_ENTRIES) throw new RangeError(`a digest record holds 1..${MAX_DIGEST_ENTRIES} entries, not ${entries.length}`);
  if (signer.length !== 32) throw new RangeError('the signer is a 32-byte Ed25519 public key');
  const parts: Buffer[] = [];
  const header = Buffer.alloc(DIGEST_HEADER_SIZE);
  DIGEST_RECORD_MAGIC.copy(header, 0);
  header.writeUInt8(DIGEST_RECORD_VERSION, OFF_VERSION);
  header.writeBigUInt64LE(BigInt(timeMs), OFF_TIME);
  Buffer.from(signer).copy(header, OFF_SIGNER);
  header.writeUInt32LE(entries.length, OFF_COUNT);
  parts.push(header);
  for (const entry of entries) {
    const key = Buffer.from(entry.key, 'utf8');
    if (key.length < 1 || key.length > MAX_DIGEST_KEY_LENGTH) throw new RangeError(`key ${entry.key}: 1..${MAX_DIGEST_KEY_LENGTH} bytes`);
    const head = Buffer.alloc(3);
    head.writeUInt8(entry.op === 'stored' ? DigestOp.stored : DigestOp.deleted, 0);
    head.writeUInt16LE(key.length, 1);
    parts.push(head, key);
    if (entry.op === 'stored') {
      if (entry.sha256.length !== 32) throw new RangeError('a SHA-256 has 32 bytes');
      const length = Buffer.alloc(8);
      length.writeBigUInt64LE(BigInt(entry.length), 0);
      parts.push(length, entry.sha256);
    }
  }
  return Buffer.concat(parts);
}

/** Parses a record (bounds-checked); `E_CORRUPT_OBJECT` for anything malformed. Does not check the signature. */
export function decodeDigestRecord(bytes: Buffer, name: string): DigestRecord {
  const corrupt = (why: string) => new CofferError('E_CORRUPT_OBJECT', `digest record ${name} is corrupt: ${why}`, { subject: { object: name } });
  if (bytes.length < DIGEST_HEADER_SIZE + DIGEST_SIGNATURE_SIZE) throw corrupt(`${bytes.length} bytes is too short`);
  if (!bytes.subarray(0, 4).equals(DIGEST_RECORD_MAGIC)) throw corrupt('bad magic');
  if (bytes.readUInt8(OFF_VERSION) !== DIGEST_RECORD_VERSION) throw corrupt(`version ${bytes.readUInt8(OFF_VERSION)} is unknown`);
  if (bytes.readUIntLE(5, 3) !== 0) throw corrupt('reserved bytes are not zero');
  const time = bytes.readBigUInt64LE(OFF_TIME);
  if (time > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt('time out of range');
  const count = bytes.readUInt32LE(OFF_COUNT);
  if (count < 1 || count > MAX_DIGEST_ENTRIES) throw corrupt(`${count} entries`);
  const end = bytes.length - DIGEST_SIGNATURE_SIZE;
  const entries: DigestEntry[] = [];
  const keys = new Set<string>();
  let at = DIGEST_HEADER_SIZE;
  for (let i = 0; i < count; i++) {
    if (at + 3 > end) throw corrupt(`entry ${i} runs past the end`);
    const op = bytes.readUInt8(at);
    const keyLength = bytes.readUInt16LE(at + 1);
    if (keyLength < 1 || keyLength > MAX_DIGEST_KEY_LENGTH) throw corrupt(`entry ${i} has a key of ${keyLength} bytes`);
    at += 3;
    if (at + keyLength > end) throw corrupt(`entry ${i} runs past the end`);
    const key = bytes.subarray(at, at + keyLength).toString('utf8');
    at += keyLength;
    if (keys.has(key)) throw corrupt(`key ${key} appears twice`);
    keys.add(key);
    if (op === DigestOp.stored) {
      if (at + 40 > end) throw corrupt(`entry ${i} runs past the end`);
      const length = bytes.readBigUInt64LE(at);
      if (length > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(`entry ${i} has a length out of range`);
      entries.push({ op: 'stored', key, length: Number(length), sha256: Buffer.from(bytes.subarray(at + 8, at + 40)) });
      at += 40;
    } else if (op === DigestOp.deleted) {
      entries.push({ op: 'deleted', key });
    } else throw corrupt(`entry ${i} has op ${op}`);
  }
  if (at !== end) throw corrupt(`${end - at} bytes after the last entry`);
  return {
    version: 1,
    timeMs: Number(time),
    signer: Buffer.from(bytes.subarray(OFF_SIGNER, OFF_SIGNER + 32)),
    entries,
    signed: bytes.subarray(0, end),
    signature: bytes.subarray(end),
  };
}
