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
 * superblock's: block 2 with 1 KiB blocks, block 1 with larger ones. (Not first_data_block + 1:
 * bigalloc with 1 KiB blocks sets s_first_data_block to 0, yet the superblock is still at byte
 * 1024, block 1, as Linux's descriptor_loc counts it.) With meta_bg, groups form meta groups of
 * (block size / descSize) groups; meta groups before s_first_meta_bg still use that table,
 * and each later meta group keeps its one descriptor block in its own first group, right
 * after that group's superblock copy if it has one (and, for meta group 0 with 1 KiB blocks
 * and s_first_data_block 0, after block 1, which holds the superblock).
 */
export interface GroupDescriptor {
  readonly inodeTable: number;
  /** False when the group's inode table was never initialised (its inodes are all unused). */
  readonly inodesInitialized: boolean;
}

const FLAG_INODE_UNINIT = 0x1;

/** Where the superblock starts on every ext filesystem, whatever its block size. */
const SUPERBLOCK_OFFSET = 1024;

/** Block holding the descriptor of `group`, and the descriptor's byte offset in it. */
export function descriptorLocation(sb: Superblock, group: number): { block: number; offset: number } {
  const perBlock = sb.blockSize / sb.descSize;
  const metaGroup = Math.floor(group / perBlock);
  const offset = (group % perBlock) * sb.descSize;
  const superblockBlock = Math.floor(SUPERBLOCK_OFFSET / sb.blockSize);
  if ((sb.featureIncompat & INCOMPAT.META_BG) === 0 || metaGroup < sb.firstMetaBg) {
    return { block: superblockBlock + 1 + metaGroup, offset };
  }
  const first = metaGroup * perBlock;
  const superblockBefore = groupHasSuperblock(sb, first) ? 1 : 0;
  const bootBlockBefore = metaGroup === 0 && superblockBlock === 1 && sb.firstDataBlock === 0 ? 1 : 0;
  const block = sb.firstDataBlock + first * sb.blocksPerGroup + superblockBefore + bootBlockBefore;
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
