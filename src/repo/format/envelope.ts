/**
 * The envelope: how every object Coffer stores (data chunks, index pages, manifests) is laid
 * out, version 1. PLEASE DO NOT CHANGE THESE VALUES: a new layout is a new file and a new
 * magic.
 *
 * ```
 * offset  size  field
 *      0     4  magic, ASCII "CFE1" (Coffer envelope, layout 1)
 *      4     1  kind: 1 data chunk, 2 disk index page, 3 snapshot manifest,
 *               4 protection marker, 5 snapshot note, 6 verification record,
 *               7 lease, 8 file tree (added later, compatible: see protection.ts,
 *               snapshot-note.ts, verification-record.ts, lease.ts and file-tree.ts);
 *               format 2 only: 9 pack frame, 10 pack trailer, 11 index segment
 *               (pack.ts, index-segment.ts); 12 tag record (tag-record.ts, both
 *               formats, compatible)
 *      5     1  compression: 0 none, 1 zstd (one frame)
 *      6     1  encryption: 0 none, 1 AES-256-GCM
 *      7     1  reserved, 0
 *      8     4  plaintext length, uint32 little-endian, at most 64 MiB
 *     12    12  nonce (only when encryption = 1), random per object
 *  12|24     n  payload: the plaintext, zstd-compressed if compression = 1,
 *               then encrypted if encryption = 1
 *    end    16  GCM authentication tag (only when encryption = 1)
 * ```
 * The GCM additional authenticated data is the header (bytes 0 to the end of the nonce)
 * followed by the 32-byte object id the object is stored under: no header field can be
 * altered, and no object can be swapped for another, unnoticed. Unencrypted objects are
 * checked by their content address instead (see `codec.ts`).
 */
import { CofferError } from '../../errors/index.js';

export const ENVELOPE_MAGIC = Buffer.from('CFE1', 'ascii');
export const ENVELOPE_HEADER_SIZE = 12;
export const NONCE_SIZE = 12;
export const TAG_SIZE = 16;
export const MAX_PLAINTEXT_SIZE = 64 * 1024 * 1024;

const OFFSET_KIND = 4;
const OFFSET_COMPRESSION = 5;
const OFFSET_ENCRYPTION = 6;
const OFFSET_RESERVED = 7;
const OFFSET_PLAINTEXT_LENGTH = 8;

/** What an object is; a reader asks for the kind it expects. */
export const ObjectKind = { chunk: 1, indexPage: 2, manifest: 3, protectionMarker: 4, snapshotNote: 5, verificationRecord: 6, lease: 7, fileTree: 8, packFrame: 9, packTrailer: 10, indexSegment: 11, tagRecord: 12 } as const;
export type ObjectKind = (typeof ObjectKind)[keyof typeof ObjectKind];

export const Compression = { none: 0, zstd: 1 } as const;
export type Compression = (typeof Compression)[keyof typeof Compression];

export const Encryption = { none: 0, aes256gcm: 1 } as const;
export type Encryption = (typeof Encryption)[keyof typeof Encryption];

/** A parsed envelope header. */
export interface EnvelopeHeader {
  kind: ObjectKind;
  compression: Compression;
  encryption: Encryption;
  plaintextLength: number;
  /** Bytes 0..end of nonce: the AAD. */
  headerLength: number;
  nonce: Buffer | undefined;
}

/** Writes a header; `nonce` is required when `encryption` is AES-256-GCM. */
export function encodeEnvelopeHeader(header: Omit<EnvelopeHeader, 'headerLength'>): Buffer {
  const encrypted = header.encryption === Encryption.aes256gcm;
  const out = Buffer.alloc(ENVELOPE_HEADER_SIZE + (encrypted ? NONCE_SIZE : 0));
  ENVELOPE_MAGIC.copy(out, 0);
  out[OFFSET_KIND] = header.kind;
  out[OFFSET_COMPRESSION] = header.compression;
  out[OFFSET_ENCRYPTION] = header.encryption;
  out[OFFSET_RESERVED] = 0;
  out.writeUInt32LE(header.plaintextLength, OFFSET_PLAINTEXT_LENGTH);
  if (encrypted) {
    if (header.nonce?.length !== NONCE_SIZE) throw new RangeError('an encrypted envelope needs a 12-byte nonce');
    header.nonce.copy(out, ENVELOPE_HEADER_SIZE);
  }
  return out;
}

/**
 * Parses and bounds-checks the header of a stored object. Throws `E_CORRUPT_OBJECT` for
 * anything that is not a version-1 envelope of the expected kind.
 */
export function decodeEnvelopeHeader(blob: Uint8Array, expectedKind: ObjectKind, name: string): EnvelopeHeader {
  const corrupt = (why: string) =>
    new CofferError('E_CORRUPT_OBJECT', `object ${name} is corrupt: ${why}`, { subject: { object: name } });
  if (blob.length < ENVELOPE_HEADER_SIZE) throw corrupt(`only ${blob.length} bytes`);
  const bytes = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  if (!bytes.subarray(0, 4).equals(ENVELOPE_MAGIC)) throw corrupt('bad magic');
  const kind = bytes[OFFSET_KIND];
  const compression = bytes[OFFSET_COMPRESSION];
  const encryption = bytes[OFFSET_ENCRYPTION];
  if (kind !== expectedKind) throw corrupt(`kind ${kind}, expected ${expectedKind}`);
  if (compression !== Compression.none && compression !== Compression.zstd) throw corrupt(`compression ${compression}`);
  if (encryption !== Encryption.none && encryption !== Encryption.aes256gcm) throw corrupt(`encryption ${encryption}`);
  if (bytes[OFFSET_RESERVED] !== 0) throw corrupt('reserved byte set');
  const plaintextLength = bytes.readUInt32LE(OFFSET_PLAINTEXT_LENGTH);
  if (plaintextLength > MAX_PLAINTEXT_SIZE) throw corrupt(`plaintext length ${plaintextLength}`);
  const encrypted = encryption === Encryption.aes256gcm;
  const headerLength = ENVELOPE_HEADER_SIZE + (encrypted ? NONCE_SIZE : 0);
  if (bytes.length < headerLength + (encrypted ? TAG_SIZE : 0)) throw corrupt('truncated');
  return {
    kind: kind as ObjectKind,
    compression: compression as Compression,
    encryption: encryption as Encryption,
    plaintextLength,
    headerLength,
    nonce: encrypted ? bytes.subarray(ENVELOPE_HEADER_SIZE, headerLength) : undefined,
  };
}
