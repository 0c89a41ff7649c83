import type { BlockRun } from './block-map.js';
import type { BlockReader } from './block-reader.js';

/**
 * The classic block map (ext2/ext3, and ext4 files without the EXTENTS flag): i_block holds
 * 15 little-endian 32-bit block numbers: [0..11] the file's first 12 blocks, [12] a single
 * indirect block (a block of block numbers), [13] a double indirect block (of single
 * indirect blocks), [14] a triple indirect block. Block number 0 is a hole, at any level:
 * a zero pointer in a double indirect block is a hole of P² blocks (P = block size / 4).
 */
const DIRECT = 12;

/**
 * Runs of logical blocks in `[start, end)` that the map allocates, in order (holes are
 * left out: `coalesce` fills them). The depth is fixed, so no loop can form.
 */
export async function* indirectRuns(
  iBlock: Uint8Array, blocks: BlockReader, inode: number, start: number, end: number,
): AsyncGenerator<BlockRun> {
  const where = `inode ${inode}`;
  const perBlock = blocks.blockSize / 4;
  const root = new DataView(iBlock.buffer, iBlock.byteOffset, 60);
  async function* walk(pointer: number, level: number, base: number): AsyncGenerator<BlockRun> {
    if (pointer === 0) return;
    if (level === 0) {
      blocks.check(pointer, 1, `${where}: data block`);
      yield { logical: base, count: 1, physical: pointer };
      return;
    }
    const span = perBlock ** (level - 1);
    const block = await blocks.block(pointer, `${where}: indirect block`);
    const view = new DataView(block.buffer, block.byteOffset, block.length);
    const firstIndex = Math.max(0, Math.floor((start - base) / span));
    for (let i = firstIndex; i < perBlock; i++) {
      const childBase = base + i * span;
      if (childBase >= end) break;
      yield* walk(view.getUint32(i * 4, true), level - 1, childBase);
    }
  }
  for (let i = Math.min(start, DIRECT); i < DIRECT && i < end; i++) yield* walk(root.getUint32(i * 4, true), 0, i);
  let base = DIRECT;
  for (let level = 1; level <= 3; level++) {
    const span = perBlock ** level;
    if (base >= end) break;
    if (base + span > start) yield* walk(root.getUint32((DIRECT + level - 1) * 4, true), level, base);
    base += span;
  }
}
