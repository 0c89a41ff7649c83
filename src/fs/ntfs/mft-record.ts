import { fsCorrupt } from '../fs-errors.js';
import { parseAttributes, type Attribute } from './attribute.js';
import { applyFixups } from './fixup.js';
import { readFileReference, type FileReference } from './metadata.js';

/**
 * An MFT record ("FILE"), one per file, of the size the boot sector gives (1 KiB usually):
 *
 * | offset | size | field |
 * |-------:|-----:|-------|
 * | 0x00 | 4 | `FILE` |
 * | 0x04 | 4 | update sequence array offset and count (see fixup.ts) |
 * | 0x08 | 8 | $LogFile sequence number |
 * | 0x10 | 2 | sequence number (bumped each time the record is reused) |
 * | 0x12 | 2 | hard link count |
 * | 0x14 | 2 | offset of the first attribute |
 * | 0x16 | 2 | flags: 1 = in use, 2 = directory |
 * | 0x18 | 4 | bytes in use |
 * | 0x1C | 4 | bytes allocated (the record size) |
 * | 0x20 | 8 | file reference of the base record (0 for a base record) |
 * | 0x28 | 2 | next attribute id |
 * | 0x2C | 4 | this record's number (NTFS 3.1; when the array starts at 0x30 or later) |
 */
export interface MftRecord {
  number: number;
  sequence: number;
  inUse: boolean;
  directory: boolean;
  /** Set on extension records: the base record they belong to. */
  base?: FileReference;
  attributes: Attribute[];
}

const FLAG_IN_USE = 1;
const FLAG_DIRECTORY = 2;

/** Parses a record read from disk (fixups are applied to `bytes` in place). */
export function parseMftRecord(bytes: Uint8Array, number: number): MftRecord {
  const what = `MFT record ${number}`;
  applyFixups(bytes, 'FILE', what);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const usaOffset = view.getUint16(4, true);
  const flags = view.getUint16(0x16, true);
  const firstAttribute = view.getUint16(0x14, true);
  const bytesInUse = view.getUint32(0x18, true);
  if (bytesInUse > bytes.length || firstAttribute < 0x18 || firstAttribute % 8 !== 0 || firstAttribute >= bytesInUse) {
    throw fsCorrupt('ntfs', `${what}: bad header (first attribute ${firstAttribute}, ${bytesInUse} bytes in use)`);
  }
  if (usaOffset >= 0x30 && view.getUint32(0x2c, true) !== number % 2 ** 32) {
    throw fsCorrupt('ntfs', `${what}: says it is record ${view.getUint32(0x2c, true)}`);
  }
  const baseRef = readFileReference(view, 0x20);
  return {
    number,
    sequence: view.getUint16(0x10, true),
    inUse: (flags & FLAG_IN_USE) !== 0,
    directory: (flags & FLAG_DIRECTORY) !== 0,
    ...(baseRef.record !== 0 ? { base: baseRef } : {}),
    attributes: (flags & FLAG_IN_USE) !== 0 ? parseAttributes(bytes, firstAttribute, bytesInUse, number) : [],
  };
}
