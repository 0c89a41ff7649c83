import { fsCorrupt } from '../fs-errors.js';
import type { BlockRun } from './block-map.js';
import type { BlockReader } from './block-reader.js';

/**
 * The extent tree (inode flag EXTENTS): its root node is i_block (60 bytes), other nodes are
 * whole blocks. Each node is a 12-byte header followed by 12-byte entries, little-endian:
 *
 * Header: | 0 | 2 | eh_magic 0xF30A | 2 | 2 | eh_entries | 4 | 2 | eh_max | 6 | 2 | eh_depth (0 = leaf) | 8 | 4 | eh_generation |
 *
 * Index entry (depth > 0): | 0 | 4 | ei_block: first logical block covered | 4 | 4 | ei_leaf_lo | 8 | 2 | ei_leaf_hi: child node block |
 *
 * Leaf entry (depth 0): | 0 | 4 | ee_block: first logical block | 4 | 2 | ee_len: blocks (> 32768: unwritten, len - 32768) |
 * | 6 | 2 | ee_start_hi | 8 | 4 | ee_start_lo: first physical block |
 *
 * Entries are sorted by logical block; an index entry covers up to the next entry's start.
 * A block node may end with a 4-byte checksum after eh_max entries.
 */
const MAGIC = 0xf30a;
const HEADER = 12;
const ENTRY = 12;
/** The kernel's own bound on tree depth. */
const MAX_DEPTH = 5;
const UNWRITTEN = 32768;

/**
 * Runs of the extents intersecting `[start, end)`, in order (gaps between them are holes,
 * filled in by `coalesce`). Throws `E_FS_CORRUPT` for bad magic, wrong depth, unsorted or
 * overlapping entries, or blocks outside the filesystem.
 */
export async function* extentRuns(
  root: Uint8Array, blocks: BlockReader, inode: number, start: number, end: number,
): AsyncGenerator<BlockRun> {
  const where = `inode ${inode}`;
  const corrupt = (why: string): Error => fsCorrupt('ext', `${where}: extent tree ${why}`, { object: where });
  const state = { cursor: 0 };
  async function* walk(node: Uint8Array, expectedDepth: number | undefined, lo: number, hi: number): AsyncGenerator<BlockRun> {
    const view = new DataView(node.buffer, node.byteOffset, node.length);
    if (node.length < HEADER || view.getUint16(0, true) !== MAGIC) throw corrupt('node has no magic');
    const entries = view.getUint16(2, true);
    const max = view.getUint16(4, true);
    const depth = view.getUint16(6, true);
    if (depth > MAX_DEPTH || (expectedDepth !== undefined && depth !== expectedDepth)) throw corrupt(`node has depth ${depth}`);
    if (entries > max || HEADER + max * ENTRY > node.length) throw corrupt(`node claims ${entries}/${max} entries`);
    let previous = -1;
    for (let i = 0; i < entries; i++) {
      const at = HEADER + i * ENTRY;
      const first = view.getUint32(at, true);
      if (first <= previous && i > 0) throw corrupt('entries are not sorted');
      previous = first;
      if (first >= end || first >= hi) break;
      if (depth === 0) {
        const rawLen = view.getUint16(at + 4, true);
        const count = rawLen > UNWRITTEN ? rawLen - UNWRITTEN : rawLen;
        const physical = view.getUint16(at + 6, true) * 2 ** 32 + view.getUint32(at + 8, true);
        if (first < state.cursor) throw corrupt('extents overlap');
        if (first < lo || first + count > hi) throw corrupt('extent lies outside its index range');
        if (count === 0) continue;
        state.cursor = first + count;
        if (first + count <= start) continue;
        blocks.check(physical, count, `${where}: extent`);
        yield { logical: first, count, physical: rawLen > UNWRITTEN ? null : physical };
      } else {
        const next = i + 1 < entries ? view.getUint32(at + ENTRY, true) : hi;
        const childHi = Math.min(next, hi);
        if (childHi <= start) continue;
        const child = view.getUint16(at + 8, true) * 2 ** 32 + view.getUint32(at + 4, true);
        if (first < lo) throw corrupt('index entry lies outside its parent range');
        yield* walk(await blocks.block(child, `${where}: extent node`), depth - 1, first, childHi);
      }
    }
  }
  yield* walk(root, undefined, 0, 2 ** 32);
}
