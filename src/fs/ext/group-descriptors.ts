import { fsCorrupt } from '../fs-errors.js';
import type { BlockReader } from './block-reader.js';
import { groupHasSuperblock, INCOMPAT, RO_COMPAT, type Superblock } from './superblock.js';

/**
 * Block group descriptors: one per group, `descSize` bytes (32, or s_desc_size with the
 * 64bit feature), little-endian. Fields Coffer reads:
 *
 * | off  | size | field               | meaning                                            |
 * | 0x08 | 4    | bg_inode_table_lo   | first block of the group's inode table             |
 * | 0x12 | 2    | bg_flags            | 0x1 INODE_UNINIT: the inode table was never written |
 * | 0x28 | 4    | bg_inode_table_hi   | high 32 bits (descSize ≥ 64)                       |
 *
 * Where the descriptors are: without meta_bg, one table starting in the block after the
 * superblock (block first_data_block + 1). With meta_bg, groups form meta groups of
 * (block size / descSize) groups; meta groups before s_first_meta_bg still use that table,
 * and each later meta group keeps its one descriptor block in its own first group, right
 * after that group's superblock copy if it has one.
 */
export interface GroupDescriptor {
  readonly inodeTable: number;
  /** False when the group's inode table was never initialised (its inodes are all unused). */
  readonly inodesInitialized: boolean;
}

const FLAG_INODE_UNINIT = 0x1;

/** Block holding the descriptor of `group`, and the descriptor's byte offset in it. */
export function descriptorLocation(sb: Superblock, group: number): { block: number; offset: number } {
  const perBlock = sb.blockSize / sb.descSize;
  const metaGroup = Math.floor(group / perBlock);
  const offset = (group % perBlock) * sb.descSize;
  if ((sb.featureIncompat & INCOMPAT.META_BG) === 0 || metaGroup < sb.firstMetaBg) {
    return { block: sb.firstDataBlock + 1 + metaGroup, offset };
  }
  const first = metaGroup * perBlock;
  const block = sb.firstDataBlock + first * sb.blocksPerGroup + (groupHasSuperblock(sb, first) ? 1 : 0);
  return { block, offset };
}

/** Reads and parses the descriptor of `group` (cached with the blocks). */
export async function readGroupDescriptor(sb: Superblock, blocks: BlockReader, group: number): Promise<GroupDescriptor> {
  if (!Number.isSafeInteger(group) || group < 0 || group >= sb.groupCount) throw fsCorrupt('ext', `no block group ${group}`);
  const { block, offset } = descriptorLocation(sb, group);
  const bytes = await blocks.block(block, `descriptor of group ${group}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, sb.descSize);
  const wide = sb.descSize >= 64;
  const inodeTable = view.getUint32(0x08, true) + (wide ? view.getUint32(0x28, true) * 2 ** 32 : 0);
  const flags = view.getUint16(0x12, true);
  // INODE_UNINIT is only meaningful when descriptors are checksummed (uninit_bg, metadata_csum).
  const checksummed = (sb.featureRoCompat & (RO_COMPAT.GDT_CSUM | RO_COMPAT.METADATA_CSUM)) !== 0;
  const inodesInitialized = !(checksummed && (flags & FLAG_INODE_UNINIT) !== 0);
  const tableBlocks = Math.ceil((sb.inodesPerGroup * sb.inodeSize) / sb.blockSize);
  blocks.check(inodeTable, tableBlocks, `inode table of group ${group}`);
  return { inodeTable, inodesInitialized };
}
