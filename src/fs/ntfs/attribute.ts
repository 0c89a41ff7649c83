import { fsCorrupt } from '../fs-errors.js';

/** Attribute type codes (the ones this reader uses). */
export const AttributeType = {
  STANDARD_INFORMATION: 0x10,
  ATTRIBUTE_LIST: 0x20,
  FILE_NAME: 0x30,
  VOLUME_NAME: 0x60,
  DATA: 0x80,
  INDEX_ROOT: 0x90,
  INDEX_ALLOCATION: 0xa0,
  BITMAP: 0xb0,
  REPARSE_POINT: 0xc0,
  END: 0xffffffff,
} as const;

/** Attribute flags (header 0x0C). */
export const ATTRIBUTE_COMPRESSED = 0x0001;
export const ATTRIBUTE_ENCRYPTED = 0x4000;
export const ATTRIBUTE_SPARSE = 0x8000;

/**
 * One attribute record inside an MFT record. Common header:
 *
 * | offset | size | field |
 * |-------:|-----:|-------|
 * | 0x00 | 4 | type (0xFFFFFFFF ends the list) |
 * | 0x04 | 4 | length of this attribute record (8-aligned) |
 * | 0x08 | 1 | non-resident flag |
 * | 0x09 | 1 | name length in UTF-16 units |
 * | 0x0A | 2 | name offset |
 * | 0x0C | 2 | flags (compressed 0x1, encrypted 0x4000, sparse 0x8000) |
 * | 0x0E | 2 | attribute id |
 *
 * Resident: 0x10 u32 value length, 0x14 u16 value offset.
 * Non-resident: 0x10 u64 lowest VCN, 0x18 u64 highest VCN, 0x20 u16 mapping pairs (runlist)
 * offset, 0x22 u16 compression unit (log2 of clusters, 0 = not compressed), 0x28 u64
 * allocated size, 0x30 u64 data size, 0x38 u64 initialized size, 0x40 u64 compressed size
 * (only in compressed or sparse attributes). Sizes are meaningful in the extent whose lowest
 * VCN is 0.
 */
export type Attribute = ResidentAttribute | NonResidentAttribute;

interface AttributeCommon {
  type: number;
  name: string;
  flags: number;
  id: number;
  /** The MFT record the attribute was found in. */
  record: number;
}

export interface ResidentAttribute extends AttributeCommon {
  resident: true;
  value: Uint8Array;
}

export interface NonResidentAttribute extends AttributeCommon {
  resident: false;
  lowestVcn: number;
  highestVcn: number;
  compressionUnit: number;
  allocatedSize: number;
  dataSize: number;
  initializedSize: number;
  /** The encoded runlist (mapping pairs), decoded by `decodeRunlist`. */
  mappingPairs: Uint8Array;
}

/**
 * Parses the attribute records of an MFT record (after fixups) from `firstOffset` up to the
 * end marker or `bytesInUse`. Throws `E_FS_CORRUPT` when a record overruns.
 */
export function parseAttributes(record: Uint8Array, firstOffset: number, bytesInUse: number, recordNumber: number): Attribute[] {
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  const end = Math.min(bytesInUse, record.length);
  const out: Attribute[] = [];
  const bad = (why: string): never => {
    throw fsCorrupt('ntfs', `MFT record ${recordNumber}: attribute at ${offset}: ${why}`);
  };
  let offset = firstOffset;
  while (true) {
    if (offset + 4 > end) bad('runs past the record');
    const type = view.getUint32(offset, true);
    if (type === AttributeType.END) break;
    if (offset + 16 > end) bad('header runs past the record');
    const length = view.getUint32(offset + 4, true);
    if (length < 16 || length % 8 !== 0 || offset + length > end) bad(`bad length ${length}`);
    const nonResident = record[offset + 8]!;
    const nameLength = record[offset + 9]!;
    const nameOffset = view.getUint16(offset + 10, true);
    const flags = view.getUint16(offset + 12, true);
    const id = view.getUint16(offset + 14, true);
    if (nameLength > 0 && nameOffset + nameLength * 2 > length) bad('name runs past the attribute');
    const name = decodeUtf16(record.subarray(offset + nameOffset, offset + nameOffset + nameLength * 2));
    if (nonResident === 0) {
      if (length < 24) bad('resident header too short');
      const valueLength = view.getUint32(offset + 16, true);
      const valueOffset = view.getUint16(offset + 20, true);
      if (valueOffset + valueLength > length) bad('value runs past the attribute');
      const value = record.subarray(offset + valueOffset, offset + valueOffset + valueLength);
      out.push({ type, name, flags, id, record: recordNumber, resident: true, value });
    } else {
      if (length < 64) bad('non-resident header too short');
      const u64 = (at: number): number => {
        const v = view.getBigUint64(offset + at, true);
        if (v > BigInt(Number.MAX_SAFE_INTEGER)) bad(`64-bit field at +${at} too big`);
        return Number(v);
      };
      const lowestVcn = u64(0x10);
      const highestVcnRaw = view.getBigInt64(offset + 0x18, true);
      const highestVcn = highestVcnRaw < -1n || highestVcnRaw > BigInt(Number.MAX_SAFE_INTEGER) ? bad('bad highest VCN') : Number(highestVcnRaw);
      const pairsOffset = view.getUint16(offset + 0x20, true);
      const compressionUnit = view.getUint16(offset + 0x22, true);
      if (pairsOffset < 64 || pairsOffset > length) bad('runlist offset outside the attribute');
      out.push({
        type, name, flags, id, record: recordNumber, resident: false,
        lowestVcn, highestVcn, compressionUnit,
        allocatedSize: u64(0x28), dataSize: u64(0x30), initializedSize: u64(0x38),
        mappingPairs: record.subarray(offset + pairsOffset, offset + length),
      });
    }
    offset += length;
    if (out.length > 4096) bad('too many attributes');
  }
  return out;
}

/** UTF-16LE → string (unpaired surrogates become U+FFFD by TextDecoder). */
export function decodeUtf16(bytes: Uint8Array): string {
  return UTF16.decode(bytes);
}
const UTF16 = new TextDecoder('utf-16le');
