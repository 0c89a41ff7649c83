/**
 * A disk index page, version 1: the chunk ids of up to `ENTRIES_PER_PAGE` consecutive blocks
 * of one disk. Pages are stored as content-addressed objects (kind 2), so a page whose blocks
 * did not change is the same object in every snapshot: an incremental of an unchanged disk
 * stores no index at all, only its manifest. PLEASE DO NOT CHANGE THESE VALUES.
 *
 * ```
 * offset  size  field
 *      0     4  magic, ASCII "CFI1"
 *      4     4  entry count n, uint32 LE, 1..65536
 *      8     8  reserved, 0
 *     16  32·n  entries: the id of each block's chunk, in block order; 32 zero bytes mark a
 *               block that reads as all zeros (no chunk is stored for it)
 * ```
 */
import { CofferError } from '../../errors/index.js';

export const INDEX_PAGE_MAGIC = Buffer.from('CFI1', 'ascii');
export const INDEX_PAGE_HEADER_SIZE = 16;
export const INDEX_ENTRY_SIZE = 32;
export const MAX_ENTRIES_PER_PAGE = 65536;
/** Entries per page for new snapshots: 4096 × 32 B = 128 KiB pages. */
export const ENTRIES_PER_PAGE = 4096;
/** The entry of an all-zero block. */
export const ZERO_ENTRY: Buffer = Buffer.alloc(INDEX_ENTRY_SIZE);

/** Serializes the entries (each 32 bytes) of one page. */
export function encodeIndexPage(entries: readonly Uint8Array[]): Buffer {
  if (entries.length < 1 || entries.length > MAX_ENTRIES_PER_PAGE) throw new RangeError(`a page holds 1..${MAX_ENTRIES_PER_PAGE} entries`);
  const out = Buffer.alloc(INDEX_PAGE_HEADER_SIZE + entries.length * INDEX_ENTRY_SIZE);
  INDEX_PAGE_MAGIC.copy(out, 0);
  out.writeUInt32LE(entries.length, 4);
  entries.forEach((entry, i) => {
    if (entry.length !== INDEX_ENTRY_SIZE) throw new RangeError('an index entry has 32 bytes');
    out.set(entry, INDEX_PAGE_HEADER_SIZE + i * INDEX_ENTRY_SIZE);
  });
  return out;
}

/** The entries of a page, as 32-byte views into `bytes`. `E_CORRUPT_OBJECT` if malformed. */
export function decodeIndexPage(bytes: Buffer, name: string): Buffer[] {
  const corrupt = (why: string) =>
    new CofferError('E_CORRUPT_OBJECT', `index page ${name} is corrupt: ${why}`, { subject: { object: name } });
  if (bytes.length < INDEX_PAGE_HEADER_SIZE || !bytes.subarray(0, 4).equals(INDEX_PAGE_MAGIC)) throw corrupt('bad magic');
  const count = bytes.readUInt32LE(4);
  if (count < 1 || count > MAX_ENTRIES_PER_PAGE) throw corrupt(`${count} entries`);
  if (bytes.length !== INDEX_PAGE_HEADER_SIZE + count * INDEX_ENTRY_SIZE) throw corrupt('length does not match the entry count');
  const entries: Buffer[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const start = INDEX_PAGE_HEADER_SIZE + i * INDEX_ENTRY_SIZE;
    entries[i] = bytes.subarray(start, start + INDEX_ENTRY_SIZE);
  }
  return entries;
}

/** True for the entry of an all-zero block. */
export function isZeroEntry(entry: Uint8Array): boolean {
  return ZERO_ENTRY.equals(entry);
}
