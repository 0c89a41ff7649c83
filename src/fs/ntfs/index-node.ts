import { fsCorrupt } from '../fs-errors.js';
import { applyFixups } from './fixup.js';
import { parseFileName, readFileReference, type FileName, type FileReference } from './metadata.js';

/**
 * Directory indexes ($I30): a B+tree of $FILE_NAME keys in collation order. The root node
 * lives in the resident $INDEX_ROOT attribute; further nodes are index blocks ("INDX") of
 * the non-resident $INDEX_ALLOCATION attribute, whose $BITMAP marks the blocks in use.
 *
 * $INDEX_ROOT value:
 *
 * | offset | size | field |
 * |-------:|-----:|-------|
 * | 0x00 | 4 | indexed attribute type (0x30 for directories) |
 * | 0x04 | 4 | collation rule (1 = file names) |
 * | 0x08 | 4 | index block size in bytes |
 * | 0x0C | 1 | clusters per index block (or the 2^-n encoding) |
 * | 0x10 | 16 | index header (below) |
 *
 * Index block ("INDX", fixups like MFT records): 0x10 u64 VCN of this block, 0x18 index header.
 *
 * Index header (offsets relative to the header itself):
 *
 * | offset | size | field |
 * |-------:|-----:|-------|
 * | 0x00 | 4 | offset of the first entry |
 * | 0x04 | 4 | bytes in use (end of the last entry) |
 * | 0x08 | 4 | bytes allocated |
 * | 0x0C | 1 | flags (1: nodes below exist) |
 *
 * Index entry:
 *
 * | offset | size | field |
 * |-------:|-----:|-------|
 * | 0x00 | 8 | file reference of the named file |
 * | 0x08 | 2 | entry length |
 * | 0x0A | 2 | key length |
 * | 0x0C | 2 | flags: 1 = has a child node, 2 = last entry (no key) |
 * | 0x10 | n | key: a $FILE_NAME value |
 * | len − 8 | 8 | VCN of the child node (when flag 1) |
 *
 * Entries before the child VCN of entry k sort before entry k's key; the last entry has no
 * key and points to the node holding the largest keys.
 */
export interface IndexEntry {
  file: FileReference;
  /** Absent on the last (key-less) entry of a node. */
  key?: FileName;
  /** The VCN of the node holding the keys that sort before this entry's key. */
  child?: number;
}

export interface IndexRoot {
  blockSize: number;
  entries: IndexEntry[];
}

const INDEX_ENTRY_HAS_CHILD = 1;
const INDEX_ENTRY_LAST = 2;
/** A node of 64 KiB holds fewer entries than this. */
const MAX_ENTRIES_PER_NODE = 8192;

export function parseIndexRoot(value: Uint8Array, what: string): IndexRoot {
  if (value.length < 0x20) throw fsCorrupt('ntfs', `${what}: $INDEX_ROOT of ${value.length} bytes`);
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  if (view.getUint32(0, true) !== 0x30) throw fsCorrupt('ntfs', `${what}: $I30 index of attribute type 0x${view.getUint32(0, true).toString(16)}`);
  const blockSize = view.getUint32(8, true);
  if (blockSize < 512 || blockSize > 65536 || (blockSize & (blockSize - 1)) !== 0) throw fsCorrupt('ntfs', `${what}: index block size ${blockSize}`);
  return { blockSize, entries: parseIndexEntries(value, 0x10, what) };
}

/** Applies the fixups of an index block (in place) and parses its entries; checks its VCN. */
export function parseIndexBlock(block: Uint8Array, vcn: number, what: string): IndexEntry[] {
  applyFixups(block, 'INDX', what);
  const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
  const own = view.getBigUint64(0x10, true);
  if (own !== BigInt(vcn)) throw fsCorrupt('ntfs', `${what}: block says it is VCN ${own}`);
  return parseIndexEntries(block, 0x18, what);
}

function parseIndexEntries(bytes: Uint8Array, headerAt: number, what: string): IndexEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const first = view.getUint32(headerAt, true);
  const inUse = view.getUint32(headerAt + 4, true);
  const end = headerAt + inUse;
  if (end > bytes.length || first < 16 || headerAt + first > end) throw fsCorrupt('ntfs', `${what}: index header outside its node`);
  const entries: IndexEntry[] = [];
  let offset = headerAt + first;
  while (true) {
    if (offset + 16 > end) throw fsCorrupt('ntfs', `${what}: index entries end without a last entry`);
    const length = view.getUint16(offset + 8, true);
    const keyLength = view.getUint16(offset + 10, true);
    const flags = view.getUint16(offset + 12, true);
    if (length < 16 || length % 8 !== 0 || offset + length > end) throw fsCorrupt('ntfs', `${what}: index entry at ${offset} has length ${length}`);
    const entry: IndexEntry = { file: readFileReference(view, offset) };
    if ((flags & INDEX_ENTRY_HAS_CHILD) !== 0) {
      if (length < 24) throw fsCorrupt('ntfs', `${what}: index entry at ${offset} too short for its child VCN`);
      const child = view.getBigUint64(offset + length - 8, true);
      if (child > BigInt(Number.MAX_SAFE_INTEGER)) throw fsCorrupt('ntfs', `${what}: child VCN too big`);
      entry.child = Number(child);
    }
    if ((flags & INDEX_ENTRY_LAST) === 0) {
      if (16 + keyLength > length) throw fsCorrupt('ntfs', `${what}: index key runs past its entry`);
      entry.key = parseFileName(bytes.subarray(offset + 16, offset + 16 + keyLength), what);
    }
    entries.push(entry);
    if ((flags & INDEX_ENTRY_LAST) !== 0) return entries;
    if (entries.length > MAX_ENTRIES_PER_NODE) throw fsCorrupt('ntfs', `${what}: too many index entries`);
    offset += length;
  }
}
