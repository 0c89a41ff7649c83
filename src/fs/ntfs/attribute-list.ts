import { fsCorrupt } from '../fs-errors.js';
import { decodeUtf16 } from './attribute.js';
import { readFileReference } from './metadata.js';

/**
 * $ATTRIBUTE_LIST (type 0x20): when a file's attributes do not fit in its base MFT record,
 * this lists every attribute (extent) and the record holding it. Entries:
 *
 * | offset | size | field |
 * |-------:|-----:|-------|
 * | 0x00 | 4 | attribute type |
 * | 0x04 | 2 | entry length (8-aligned) |
 * | 0x06 | 1 | name length in UTF-16 units |
 * | 0x07 | 1 | name offset |
 * | 0x08 | 8 | lowest VCN of this extent (0 for resident attributes) |
 * | 0x10 | 8 | file reference of the record holding it |
 * | 0x18 | 2 | attribute id |
 * | 0x1A | … | name, UTF-16LE |
 */
export interface AttributeListEntry {
  type: number;
  name: string;
  lowestVcn: number;
  record: number;
  sequence: number;
  id: number;
}

export function parseAttributeList(bytes: Uint8Array, what: string): AttributeListEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: AttributeListEntry[] = [];
  let offset = 0;
  while (offset + 0x1a <= bytes.length) {
    const type = view.getUint32(offset, true);
    const length = view.getUint16(offset + 4, true);
    if (type === 0 && length === 0) break; // trailing padding
    if (length < 0x1a || offset + length > bytes.length) throw fsCorrupt('ntfs', `${what}: attribute list entry at ${offset} has length ${length}`);
    const nameLength = bytes[offset + 6]!;
    const nameOffset = bytes[offset + 7]!;
    if (nameOffset + nameLength * 2 > length) throw fsCorrupt('ntfs', `${what}: attribute list name runs past its entry`);
    const vcn = view.getBigUint64(offset + 8, true);
    if (vcn > BigInt(Number.MAX_SAFE_INTEGER)) throw fsCorrupt('ntfs', `${what}: attribute list VCN too big`);
    const reference = readFileReference(view, offset + 0x10);
    out.push({
      type,
      name: decodeUtf16(bytes.subarray(offset + nameOffset, offset + nameOffset + nameLength * 2)),
      lowestVcn: Number(vcn),
      record: reference.record,
      sequence: reference.sequence,
      id: view.getUint16(offset + 0x18, true),
    });
    offset += length;
  }
  return out;
}
