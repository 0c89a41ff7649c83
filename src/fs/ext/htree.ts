import { fsCorrupt } from '../fs-errors.js';
import { dirHash } from './dir-hash.js';

/**
 * The htree index of a directory (inode flag INDEX, feature dir_index): logical block 0 of
 * the directory holds `.` (12 bytes) and `..` (whose rec_len spans the block, hiding the
 * index from linear readers), then:
 *
 * | off  | size | field            | meaning                                           |
 * | 0x18 | 4    | reserved_zero    |                                                   |
 * | 0x1C | 1    | hash_version     | see dir-hash.ts                                   |
 * | 0x1D | 1    | info_length      | 8                                                 |
 * | 0x1E | 1    | indirect_levels  | levels of interior nodes below the root (≤ 2, ≤ 3 with large_dir) |
 * | 0x1F | 1    | unused_flags     |                                                   |
 * | 0x20 | 2    | limit            | entries that fit                                  |
 * | 0x22 | 2    | count            | entries used                                      |
 * | 0x24 | 4    | block            | logical block of entry 0 (whose hash is implicitly 0) |
 * | 0x28 | 8×…  | {hash, block}    | entries 1…count-1, sorted by hash                 |
 *
 * An interior node is a block holding one empty directory entry (inode 0, rec_len = block
 * size) and the same limit/count/entries from byte 8. Leaves are ordinary directory blocks.
 * A name is in the leaf of the last entry whose hash ≤ the name's hash, or, when hashes
 * collide across leaves, in the following leaves whose entry hash is the same with its low
 * bit set.
 */
const MAX_LEVELS = 3;

/** Reads one logical block of the directory. */
export type DirBlockReader = (logical: number) => Promise<Uint8Array>;

/**
 * The logical blocks of the directory where `name` may be, in the order to search them.
 * Returns undefined when the index uses a hash this reader does not know (search linearly).
 * Throws `E_FS_CORRUPT` when the index contradicts itself.
 */
export async function htreeCandidates(
  readBlock: DirBlockReader, name: Uint8Array, options: { seed: readonly number[]; unsignedHash: boolean; directory: number; blockCount: number },
): Promise<number[] | undefined> {
  const where = `directory inode ${options.directory}`;
  const corrupt = (why: string): Error => fsCorrupt('ext', `${where}: htree ${why}`, { object: where });
  const root = await readBlock(0);
  if (root.length < 0x28) throw corrupt('root is truncated');
  const rootView = new DataView(root.buffer, root.byteOffset, root.length);
  let version = root[0x1c] ?? 0;
  const infoLength = root[0x1d] ?? 0;
  const levels = root[0x1e] ?? 0;
  if (infoLength !== 8) throw corrupt(`root info length ${infoLength}`);
  if (levels >= MAX_LEVELS) throw corrupt(`${levels + 1} levels`);
  if (options.unsignedHash && version <= 2) version += 3;
  const hash = dirHash(name, version, options.seed);
  if (hash === undefined) return undefined;

  // One node's entries: [{hash, block}], entry 0's hash being 0.
  const entriesAt = (view: DataView, at: number): { hash: number; block: number }[] => {
    if (at + 8 > view.byteLength) throw corrupt('node is truncated');
    const limit = view.getUint16(at, true);
    const count = view.getUint16(at + 2, true);
    if (count === 0 || count > limit || at + limit * 8 > view.byteLength) throw corrupt(`node claims ${count}/${limit} entries`);
    const out: { hash: number; block: number }[] = [];
    for (let i = 0; i < count; i++) {
      out.push({ hash: i === 0 ? 0 : view.getUint32(at + i * 8, true), block: view.getUint32(at + i * 8 + 4, true) });
    }
    return out;
  };

  let entries = entriesAt(rootView, 0x20);
  for (let level = 0; ; level++) {
    let pick = 0;
    for (let i = 1; i < entries.length; i++) {
      const e = entries[i];
      if (e === undefined || e.hash < (entries[i - 1]?.hash ?? 0)) throw corrupt('entries are not sorted');
      if (e.hash <= hash) pick = i; else break;
    }
    const chosen = entries[pick];
    if (chosen === undefined || chosen.block === 0 || chosen.block >= options.blockCount) throw corrupt(`entry points at block ${chosen?.block}`);
    if (level === levels) {
      const candidates = [chosen.block];
      // Collisions: the following leaves whose hash, without the continuation bit, is ours.
      for (let i = pick + 1; i < entries.length; i++) {
        const e = entries[i];
        if (e === undefined || (e.hash & 1) === 0 || ((e.hash & ~1) >>> 0) !== hash) break;
        if (e.block === 0 || e.block >= options.blockCount) throw corrupt(`entry points at block ${e.block}`);
        candidates.push(e.block);
      }
      return candidates;
    }
    const node = await readBlock(chosen.block);
    const nodeView = new DataView(node.buffer, node.byteOffset, node.length);
    if (nodeView.getUint32(0, true) !== 0) throw corrupt(`interior node ${chosen.block} is not empty`);
    entries = entriesAt(nodeView, 8);
  }
}
