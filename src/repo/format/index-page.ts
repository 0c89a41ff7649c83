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
 * Layout 2 (repository format 2 only, magic `CFI2`): the same header, then 80·n bytes of
 * located entries (located-entry.ts: chunk id, pack, frame and range); 80 zero bytes mark a
 * zero block.
 */
import { CofferError } from '../../errors/index.js';

export const INDEX_PAGE_MAGIC = Buffer.from('CFI1', 'ascii');
export const LOCATED_PAGE_MAGIC = Buffer.from('CFI2', 'ascii');
/** Size of an entry of layout 2 (located-entry.ts). */
export const LOCATED_INDEX_ENTRY_SIZE = 80;
export const INDEX_PAGE_HEADER_SIZE = 16;
export const INDEX_ENTRY_SIZE = 32;
export const MAX_ENTRIES_PER_PAGE = 65536;
/** Entries per page for new snapshots: 4096 × 32 B = 128 KiB pages. */
export const ENTRIES_PER_PAGE = 4096;
/** The entry of an all-zero block. */
export const ZERO_ENTRY: Buffer = Buffer.alloc(INDEX_ENTRY_SIZE);

/**
 * Serializes the entries of one page: all 32 bytes (layout 1) or all 80 bytes (layout 2,
 * located entries).
 */
export function encodeIndexPage(entries: readonly Uint8Array[]): Buffer {
  if (entries.length < 1 || entries.length > MAX_ENTRIES_PER_PAGE) throw new RangeError(`a page holds 1..${MAX_ENTRIES_PER_PAGE} entries`);
  const size = entries[0]?.length === LOCATED_INDEX_ENTRY_SIZE ? LOCATED_INDEX_ENTRY_SIZE : INDEX_ENTRY_SIZE;
  const out = Buffer.alloc(INDEX_PAGE_HEADER_SIZE + entries.length * size);
  (size === INDEX_ENTRY_SIZE ? INDEX_PAGE_MAGIC : LOCATED_PAGE_MAGIC).copy(out, 0);
  out.writeUInt32LE(entries.length, 4);
  entries.forEach((entry, i) => {
    if (entry.length !== size) throw new RangeError(`every entry of this page has ${size} bytes`);
    out.set(entry, INDEX_PAGE_HEADER_SIZE + i * size);
  });
  return out;
}

/**
 * The entries of a page, as views into `bytes`: 32 bytes each (layout 1) or 80 (layout 2).
 * `E_CORRUPT_OBJECT` if malformed.
 */
export function decodeIndexPage(bytes: Buffer, name: string): Buffer[] {
  const corrupt = (why: string) =>
    new CofferError('E_CORRUPT_OBJECT', `index page ${name} is corrupt: ${why}`, { subject: { object: name } });
  if (bytes.length < INDEX_PAGE_HEADER_SIZE) throw corrupt('bad magic');
  const magic = bytes.subarray(0, 4);
  const size = magic.equals(INDEX_PAGE_MAGIC) ? INDEX_ENTRY_SIZE : magic.equals(LOCATED_PAGE_MAGIC) ? LOCATED_INDEX_ENTRY_SIZE : 0;
  if (size === 0) throw corrupt('bad magic');
  const count = bytes.readUInt32LE(4);
  if (count < 1 || count > MAX_ENTRIES_PER_PAGE) throw corrupt(`${count} entries`);
  if (bytes.length !== INDEX_PAGE_HEADER_SIZE + count * size) throw corrupt('length does not match the entry count');
  const entries: Buffer[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const start = INDEX_PAGE_HEADER_SIZE + i * size;
    entries[i] = bytes.subarray(start, start + size);
  }
  return entries;
}

/** True for the entry (either layout) of an all-zero block: its chunk id is 32 zero bytes. */
export function isZeroEntry(entry: Uint8Array): boolean {
  return entry.length >= INDEX_ENTRY_SIZE && ZERO_ENTRY.equals(entry.subarray(0, INDEX_ENTRY_SIZE));
}
