import { fsCorrupt } from '../fs-errors.js';
import type { RawAttr } from './attr-entry.js';

/**
 * A short-form attribute list (struct xfs_attr_shortform), held in the inode's attribute
 * fork (local format) while it fits:
 * | offset | size | field   | meaning                                                     |
 * |-------:|-----:|---------|-------------------------------------------------------------|
 * |      0 |    2 | totsize | bytes of this header and every entry (big-endian)           |
 * |      2 |    1 | count   | entries                                                     |
 * |      3 |    1 | padding |                                                             |
 * Then `count` entries packed one after the other, `totsize` bytes in all:
 * | offset | size | field    | meaning                                                    |
 * |-------:|-----:|----------|------------------------------------------------------------|
 * |      0 |    1 | namelen  | 1..255                                                     |
 * |      1 |    1 | valuelen | bytes of value (so at most 255 here)                       |
 * |      2 |    1 | flags    | namespace bits (attr-entry.ts)                             |
 * |      3 |    … | nameval  | the name, then the value                                   |
 */
const HEADER_SIZE = 4;
const ENTRY_HEADER_SIZE = 3;

/** The entries of a short-form attribute fork (`fork`: its bytes in the inode); `E_FS_CORRUPT` naming `where` when they do not fit. */
export function parseShortformAttrs(fork: Uint8Array, where: string): RawAttr[] {
  const what = `${where}: short-form attributes`;
  if (fork.length < HEADER_SIZE) throw fsCorrupt('xfs', `${what}: a fork of ${fork.length} bytes`, { object: where });
  const view = new DataView(fork.buffer, fork.byteOffset, fork.byteLength);
  const total = view.getUint16(0);
  const count = view.getUint8(2);
  if (total < HEADER_SIZE || total > fork.length) throw fsCorrupt('xfs', `${what}: ${total} bytes in a fork of ${fork.length}`, { object: where });
  const out: RawAttr[] = [];
  let at = HEADER_SIZE;
  for (let i = 0; i < count; i++) {
    if (at + ENTRY_HEADER_SIZE > total) throw fsCorrupt('xfs', `${what}: entry ${i} lies beyond the list's ${total} bytes`, { object: where });
    const nameLength = view.getUint8(at);
    const valueLength = view.getUint8(at + 1);
    const nameAt = at + ENTRY_HEADER_SIZE;
    const end = nameAt + nameLength + valueLength;
    if (nameLength === 0 || end > total) throw fsCorrupt('xfs', `${what}: entry ${i} (name ${nameLength}, value ${valueLength} bytes) does not fit`, { object: where });
    out.push({ flags: view.getUint8(at + 2), name: fork.subarray(nameAt, nameAt + nameLength), value: fork.subarray(nameAt + nameLength, end) });
    at = end;
  }
  if (at !== total) throw fsCorrupt('xfs', `${what}: ${count} entries take ${at} bytes, the header says ${total}`, { object: where });
  return out;
}
