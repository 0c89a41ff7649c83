import { expectedDescriptorChecksum, CHECKSUM_OFFSET } from './descriptor-checksum.js';
import { COMPAT, groupHasSuperblock, INCOMPAT, RO_COMPAT, type Superblock } from './superblock.js';

/**
 * Block group descriptors: one per group, `descSize` bytes (32, or s_desc_size with the
 * 64bit feature), little-endian. Fields Coffer reads:
 *
 * | off  | size | field               | meaning                                            |
 * | 0x00 | 4    | bg_block_bitmap_lo  | block of the group's block bitmap                  |
 * | 0x04 | 4    | bg_inode_bitmap_lo  | block of the group's inode bitmap                  |
 * | 0x08 | 4    | bg_inode_table_lo   | first block of the group's inode table             |
 * | 0x12 | 2    | bg_flags            | 0x1 INODE_UNINIT: the inode table was never written |
 * | 0x1E | 2    | bg_checksum         | see descriptor-checksum.ts                         |
 * | 0x20 | 4    | bg_block_bitmap_hi  | high 32 bits of the three locations (descSize ≥ 64) |
 * | 0x24 | 4    | bg_inode_bitmap_hi  |                                                    |
 * | 0x28 | 4    | bg_inode_table_hi   |                                                    |
 *
 * Where the descriptors are: without meta_bg, one table starting in the block after the
 * superblock's: block 2 with 1 KiB blocks, block 1 with larger ones. (Not first_data_block + 1:
 * bigalloc with 1 KiB blocks sets s_first_data_block to 0, yet the superblock is still at byte
 * 1024, block 1, as Linux's descriptor_loc counts it.) With meta_bg, groups form meta groups of
 * (block size / descSize) groups; meta groups before s_first_meta_bg still use that table,
 * and each later meta group keeps its one descriptor block in its own first group, right
 * after that group's superblock copy if it has one (and, for meta group 0 with 1 KiB blocks
 * and s_first_data_block 0, after block 1, which holds the superblock).
 *
 * Backup copies (mke2fs writes them; e2fsprogs does not keep their flags and free counts
 * current): the table, whole, follows each backup superblock (groups 1, 3, 5, 7, 9, 25 …
 * with sparse_super; s_backup_bgs with sparse_super2), in the first block after it. A
 * meta_bg descriptor block is copied into the second and the last group of its meta group,
 * at the same place in that group. Coffer tries the copies in order (backupDescriptorBlocks):
 * group 1's table, then group 3's, 5's …; a meta group's second group, then its last.
 */
export interface GroupDescriptor {
  readonly inodeTable: number;
  /** False when the group's inode table was never initialised (its inodes are all unused). */
  readonly inodesInitialized: boolean;
}

/** Every field of a descriptor Coffer reads, as stored. */
interface RawGroupDescriptor {
  readonly blockBitmap: number;
  readonly inodeBitmap: number;
  readonly inodeTable: number;
  readonly flags: number;
  readonly checksum: number;
}

const OFF = { blockBitmap: 0x00, inodeBitmap: 0x04, inodeTable: 0x08, flags: 0x12, blockBitmapHi: 0x20, inodeBitmapHi: 0x24, inodeTableHi: 0x28 } as const;
if (CHECKSUM_OFFSET + 2 !== OFF.blockBitmapHi) throw new Error('bg_checksum must end the 32-byte descriptor');

const FLAG_INODE_UNINIT = 0x1;

/** Where the superblock starts on every ext filesystem, whatever its block size. */
const SUPERBLOCK_OFFSET = 1024;

/** Descriptors in one block. */
export function descriptorsPerBlock(sb: Superblock): number {
  return sb.blockSize / sb.descSize;
}

/** Blocks the descriptors of all groups fill. */
export function descriptorBlockCount(sb: Superblock): number {
  return Math.ceil(sb.groupCount / descriptorsPerBlock(sb));
}

/** First block of `group`. */
function groupFirstBlock(sb: Superblock, group: number): number {
  return sb.firstDataBlock + group * sb.blocksPerGroup;
}

/** True when descriptor block `index` belongs to the single table after the superblock (not to a meta group). */
function inOldTable(sb: Superblock, index: number): boolean {
  return (sb.featureIncompat & INCOMPAT.META_BG) === 0 || index < sb.firstMetaBg;
}

/** The primary copy of descriptor block `index` (the block holding groups index × per-block …). */
export function primaryDescriptorBlock(sb: Superblock, index: number): number {
  const superblockBlock = Math.floor(SUPERBLOCK_OFFSET / sb.blockSize);
  if (inOldTable(sb, index)) return superblockBlock + 1 + index;
  const first = index * descriptorsPerBlock(sb);
  const superblockBefore = groupHasSuperblock(sb, first) ? 1 : 0;
  const bootBlockBefore = index === 0 && superblockBlock === 1 && sb.firstDataBlock === 0 ? 1 : 0;
  return groupFirstBlock(sb, first) + superblockBefore + bootBlockBefore;
}

/** Backup copies of a descriptor block tried, at most, before its groups count as unreadable. */
export const BACKUP_COPIES_TRIED = 8;

/**
 * The backup copies of descriptor block `index`, in the order they are tried, each with the
 * group holding it (none: a filesystem of one group, a meta group of one group, sparse_super2
 * without backups). The single table: after each backup superblock in turn (groups 1, 3, 5,
 * 7, 9, 25, 27 … with sparse_super, every group without it, s_backup_bgs with sparse_super2),
 * at most {@link BACKUP_COPIES_TRIED}: a write gone astray rarely reaches two copies, and
 * e2fsck itself takes group 1's unless told another (`-b`). A meta group's block: its second
 * group's copy, then its last group's.
 */
export function backupDescriptorBlocks(sb: Superblock, index: number): { block: number; group: number }[] {
  if (inOldTable(sb, index)) return backupGroups(sb).map((group) => ({ block: groupFirstBlock(sb, group) + 1 + index, group }));
  const perBlock = descriptorsPerBlock(sb);
  const second = index * perBlock + 1;
  const last = Math.min((index + 1) * perBlock, sb.groupCount) - 1;
  const groups = second > last ? [] : second === last ? [second] : [second, last];
  return groups.map((group) => ({ block: groupFirstBlock(sb, group) + (groupHasSuperblock(sb, group) ? 1 : 0), group }));
}

/** The groups after 0 that hold a superblock and descriptor table copy, in order, at most {@link BACKUP_COPIES_TRIED}. */
function backupGroups(sb: Superblock): number[] {
  if ((sb.featureCompat & COMPAT.SPARSE_SUPER2) !== 0) return sb.backupBgs.filter((g) => g > 0 && g < sb.groupCount).sort((a, b) => a - b);
  const groups: number[] = [];
  for (let group = 1; group < sb.groupCount && groups.length < BACKUP_COPIES_TRIED; group++) if (groupHasSuperblock(sb, group)) groups.push(group);
  return groups;
}

/** Parses the `descSize` bytes of one descriptor (pure). */
function parseRaw(sb: Superblock, bytes: Uint8Array): RawGroupDescriptor {
  const view = new DataView(bytes.buffer, bytes.byteOffset, sb.descSize);
  const wide = sb.descSize >= 64;
  const u64 = (lo: number, hi: number): number => view.getUint32(lo, true) + (wide ? view.getUint32(hi, true) * 2 ** 32 : 0);
  return {
    blockBitmap: u64(OFF.blockBitmap, OFF.blockBitmapHi),
    inodeBitmap: u64(OFF.inodeBitmap, OFF.inodeBitmapHi),
    inodeTable: u64(OFF.inodeTable, OFF.inodeTableHi),
    flags: view.getUint16(OFF.flags, true),
    checksum: view.getUint16(CHECKSUM_OFFSET, true),
  };
}

/**
 * Parses descriptor `group` from its `descSize` bytes. `fromBackup`: a backup copy, whose
 * INODE_UNINIT flag may be stale (e2fsprogs writes backups at mkfs and resize only), so
 * every group counts as initialised, as e2fsck does with a backup table.
 */
export function parseGroupDescriptor(sb: Superblock, bytes: Uint8Array, fromBackup: boolean): GroupDescriptor {
  const raw = parseRaw(sb, bytes);
  // INODE_UNINIT is only meaningful when descriptors are checksummed (uninit_bg, metadata_csum).
  const checksummed = (sb.featureRoCompat & (RO_COMPAT.GDT_CSUM | RO_COMPAT.METADATA_CSUM)) !== 0;
  const inodesInitialized = fromBackup || !(checksummed && (raw.flags & FLAG_INODE_UNINIT) !== 0);
  return { inodeTable: raw.inodeTable, inodesInitialized };
}

/**
 * Why descriptor `group` (its `descSize` bytes) cannot be right, or undefined when it
 * checks (pure): all zeros; a checksum that does not match (metadata_csum, uninit_bg); or a
 * bitmap or the inode table outside the group's blocks (anywhere in the filesystem with
 * flex_bg), or on the superblock and descriptor blocks at the start of group 0. These are
 * the checks Linux makes on every descriptor at mount (ext4_check_descriptors).
 */
export function descriptorProblem(sb: Superblock, group: number, bytes: Uint8Array): string | undefined {
  if (bytes.every((b) => b === 0)) return 'all zeros';
  const raw = parseRaw(sb, bytes);
  const expected = expectedDescriptorChecksum(sb, group, bytes);
  if (expected !== undefined && expected !== raw.checksum) {
    return `checksum 0x${hex4(raw.checksum)} instead of 0x${hex4(expected)}`;
  }
  const flex = (sb.featureIncompat & INCOMPAT.FLEX_BG) !== 0;
  const headerEnd = primaryDescriptorBlock(sb, Math.max(0, Math.min(descriptorBlockCount(sb), oldTableBlocks(sb)) - 1));
  const lo = Math.max(headerEnd + 1, flex ? sb.firstDataBlock : groupFirstBlock(sb, group));
  const hi = flex || group === sb.groupCount - 1 ? sb.blocksCount - 1 : groupFirstBlock(sb, group) + sb.blocksPerGroup - 1;
  const tableBlocks = Math.ceil((sb.inodesPerGroup * sb.inodeSize) / sb.blockSize);
  const outside = (what: string, first: number, count: number): string | undefined =>
    first >= lo && first + count - 1 <= hi ? undefined
      : `its ${what} at block ${first}${count > 1 ? `-${first + count - 1}` : ''} is not within blocks ${lo}-${hi}`;
  return outside('block bitmap', raw.blockBitmap, 1) ?? outside('inode bitmap', raw.inodeBitmap, 1)
    ?? outside('inode table', raw.inodeTable, tableBlocks);
}

/** Descriptor blocks in the table after the superblock (all of them without meta_bg). */
function oldTableBlocks(sb: Superblock): number {
  return (sb.featureIncompat & INCOMPAT.META_BG) === 0 ? descriptorBlockCount(sb) : sb.firstMetaBg;
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}
