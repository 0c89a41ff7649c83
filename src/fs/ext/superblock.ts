import { crc32cUpdate } from '../crc32c.js';
import { fsCorrupt, fsUnsupported } from '../fs-errors.js';
import type { FsType } from '../filesystem.js';

/**
 * The ext2/ext3/ext4 superblock: 1024 bytes at byte 1024 of the filesystem, little-endian.
 * Offsets of the fields Coffer reads (the rest is for writers and fsck):
 *
 * | off   | size | field                 | meaning                                          |
 * | 0x000 | 4    | s_inodes_count        | inodes in the filesystem                         |
 * | 0x004 | 4    | s_blocks_count_lo     | blocks (low 32 bits; high at 0x150 with 64bit)   |
 * | 0x014 | 4    | s_first_data_block    | 1 for 1 KiB blocks (without bigalloc), else 0    |
 * | 0x018 | 4    | s_log_block_size      | block size = 1024 << n                           |
 * | 0x020 | 4    | s_blocks_per_group    |                                                  |
 * | 0x028 | 4    | s_inodes_per_group    |                                                  |
 * | 0x038 | 2    | s_magic               | 0xEF53                                           |
 * | 0x04C | 4    | s_rev_level           | 0: 128-byte inodes, first inode 11; 1: dynamic   |
 * | 0x054 | 4    | s_first_ino           | first non-reserved inode (rev 1)                 |
 * | 0x058 | 2    | s_inode_size          | bytes per inode record (rev 1)                   |
 * | 0x05C | 4    | s_feature_compat      | see COMPAT                                       |
 * | 0x060 | 4    | s_feature_incompat    | see INCOMPAT: an unknown bit means "do not read" |
 * | 0x064 | 4    | s_feature_ro_compat   | see RO_COMPAT: reading is fine whatever it says  |
 * | 0x068 | 16   | s_uuid                |                                                  |
 * | 0x078 | 16   | s_volume_name         | NUL-padded label                                 |
 * | 0x0EC | 16   | s_hash_seed[4]        | htree hash seed (all zero: the default seed)     |
 * | 0x0FC | 1    | s_def_hash_version    | default htree hash                               |
 * | 0x0FE | 2    | s_desc_size           | group descriptor size with 64bit (≥ 64)          |
 * | 0x104 | 4    | s_first_meta_bg       | first meta block group with meta_bg              |
 * | 0x150 | 4    | s_blocks_count_hi     | with 64bit                                       |
 * | 0x160 | 4    | s_flags               | 0x1 signed dir hash, 0x2 unsigned dir hash       |
 * | 0x24C | 8    | s_backup_bgs[2]       | the only groups with a superblock (sparse_super2)|
 * | 0x270 | 4    | s_checksum_seed       | metadata_csum seed with csum_seed (else from UUID)|
 */
export const SUPERBLOCK_OFFSET = 1024;
export const SUPERBLOCK_SIZE = 1024;
export const EXT_MAGIC = 0xef53;

const OFF = {
  inodesCount: 0x00, blocksCountLo: 0x04, firstDataBlock: 0x14, logBlockSize: 0x18, logClusterSize: 0x1c,
  blocksPerGroup: 0x20, inodesPerGroup: 0x28, magic: 0x38, revLevel: 0x4c, firstIno: 0x54, inodeSize: 0x58,
  featureCompat: 0x5c, featureIncompat: 0x60, featureRoCompat: 0x64, uuid: 0x68, volumeName: 0x78,
  hashSeed: 0xec, defHashVersion: 0xfc, descSize: 0xfe, firstMetaBg: 0x104, blocksCountHi: 0x150, flags: 0x160,
  backupBgs: 0x24c, checksumSeed: 0x270,
} as const;

/** s_feature_compat bits Coffer looks at. */
export const COMPAT = { HAS_JOURNAL: 0x4, DIR_INDEX: 0x20, SPARSE_SUPER2: 0x200 } as const;

/** s_feature_incompat bits; {@link READABLE_INCOMPAT} lists those this reader handles. */
export const INCOMPAT = {
  COMPRESSION: 0x1, FILETYPE: 0x2, RECOVER: 0x4, JOURNAL_DEV: 0x8, META_BG: 0x10, EXTENTS: 0x40, BIT64: 0x80,
  MMP: 0x100, FLEX_BG: 0x200, EA_INODE: 0x400, DIRDATA: 0x1000, CSUM_SEED: 0x2000, LARGEDIR: 0x4000,
  INLINE_DATA: 0x8000, ENCRYPT: 0x10000, CASEFOLD: 0x20000,
} as const;

/** s_feature_ro_compat bits Coffer looks at. */
export const RO_COMPAT = { SPARSE_SUPER: 0x1, LARGE_FILE: 0x2, HUGE_FILE: 0x8, GDT_CSUM: 0x10, METADATA_CSUM: 0x400 } as const;

/**
 * What the INCOMPAT bits mean for a reader. A journal needing recovery is read as it is
 * (the snapshot of a running guest: the last transactions are in the journal only);
 * large_dir, casefold and ea_inode change nothing for reading names and data; mmp guards
 * writers only; encrypt allows fscrypt directories, each refused on its own (its inodes carry
 * the encrypt flag) while the rest of the filesystem reads.
 */
const READABLE_INCOMPAT = INCOMPAT.FILETYPE | INCOMPAT.RECOVER | INCOMPAT.META_BG | INCOMPAT.EXTENTS | INCOMPAT.BIT64
  | INCOMPAT.MMP | INCOMPAT.FLEX_BG | INCOMPAT.EA_INODE | INCOMPAT.CSUM_SEED | INCOMPAT.LARGEDIR
  | INCOMPAT.INLINE_DATA | INCOMPAT.CASEFOLD | INCOMPAT.ENCRYPT;

const INCOMPAT_NAMES: Record<number, string> = {
  0x1: 'compression', 0x8: 'journal_dev (an external journal device, not a filesystem)', 0x1000: 'dirdata',
};

/** s_flags bit: directory hashes treat names as unsigned chars. */
export const FLAG_UNSIGNED_HASH = 0x2;

/** The fields of a superblock a reader needs, checked for consistency. */
export interface Superblock {
  readonly inodesCount: number;
  readonly blocksCount: number;
  readonly firstDataBlock: number;
  readonly blockSize: number;
  readonly blocksPerGroup: number;
  readonly inodesPerGroup: number;
  readonly groupCount: number;
  readonly inodeSize: number;
  readonly firstIno: number;
  readonly featureCompat: number;
  readonly featureIncompat: number;
  readonly featureRoCompat: number;
  readonly uuid: string;
  readonly label: string;
  readonly hashSeed: readonly [number, number, number, number];
  readonly defHashVersion: number;
  /** Group descriptor size: 32, or s_desc_size with 64bit. */
  readonly descSize: number;
  readonly firstMetaBg: number;
  readonly flags: number;
  readonly backupBgs: readonly [number, number];
  /** The 16 bytes of s_uuid (the start of every uninit_bg checksum). */
  readonly uuidBytes: Uint8Array;
  /**
   * Where every metadata_csum CRC-32C starts: s_checksum_seed with csum_seed (the UUID may
   * have changed since), else the raw CRC-32C register of the UUID from ~0.
   */
  readonly checksumSeed: number;
}

/**
 * Parses and checks a superblock (the 1024 bytes at {@link SUPERBLOCK_OFFSET}). Throws
 * `E_FS_CORRUPT` when the magic is wrong or the geometry contradicts itself.
 */
export function parseSuperblock(bytes: Uint8Array): Superblock {
  if (bytes.length < SUPERBLOCK_SIZE) throw fsCorrupt('ext', 'superblock is truncated');
  const view = new DataView(bytes.buffer, bytes.byteOffset, SUPERBLOCK_SIZE);
  const u32 = (o: number): number => view.getUint32(o, true);
  const u16 = (o: number): number => view.getUint16(o, true);
  if (u16(OFF.magic) !== EXT_MAGIC) throw fsCorrupt('ext', 'no ext2/3/4 superblock magic');
  const logBlock = u32(OFF.logBlockSize);
  if (logBlock > 6) throw fsCorrupt('ext', `block size 1024 << ${logBlock} is beyond 64 KiB`);
  const blockSize = 1024 << logBlock;
  const incompat = u32(OFF.featureIncompat);
  const rev = u32(OFF.revLevel);
  if (rev > 1) throw fsCorrupt('ext', `unknown revision ${rev}`);
  const inodeSize = rev === 0 ? 128 : u16(OFF.inodeSize);
  if (inodeSize < 128 || inodeSize > blockSize || (inodeSize & (inodeSize - 1)) !== 0) {
    throw fsCorrupt('ext', `inode size ${inodeSize} is not a power of two between 128 and the block size`);
  }
  const bit64 = (incompat & INCOMPAT.BIT64) !== 0;
  const blocksCount = u32(OFF.blocksCountLo) + (bit64 ? u32(OFF.blocksCountHi) * 2 ** 32 : 0);
  const firstDataBlock = u32(OFF.firstDataBlock);
  const blocksPerGroup = u32(OFF.blocksPerGroup);
  const inodesPerGroup = u32(OFF.inodesPerGroup);
  const inodesCount = u32(OFF.inodesCount);
  const clusterBits = u32(OFF.logClusterSize);
  // A group's bitmap is one block: at most 8 × block size clusters (of up to 2^16 blocks with bigalloc).
  const maxBlocksPerGroup = 8 * blockSize * (clusterBits >= logBlock && clusterBits - logBlock <= 16 ? 2 ** (clusterBits - logBlock) : 1);
  if (blocksPerGroup === 0 || blocksPerGroup > maxBlocksPerGroup) throw fsCorrupt('ext', `${blocksPerGroup} blocks per group`);
  if (inodesPerGroup === 0 || inodesPerGroup > 8 * blockSize) throw fsCorrupt('ext', `${inodesPerGroup} inodes per group`);
  if (firstDataBlock > 1 || (blockSize > 1024 && firstDataBlock !== 0)) throw fsCorrupt('ext', `first data block ${firstDataBlock}`);
  if (blocksCount <= firstDataBlock || blocksCount * blockSize > 2 ** 53) throw fsCorrupt('ext', `${blocksCount} blocks`);
  const groupCount = Math.ceil((blocksCount - firstDataBlock) / blocksPerGroup);
  if (inodesCount !== groupCount * inodesPerGroup) {
    throw fsCorrupt('ext', `${inodesCount} inodes do not fill ${groupCount} groups of ${inodesPerGroup}`);
  }
  const descSize = bit64 ? u16(OFF.descSize) : 32;
  if (descSize < 32 || descSize > 1024 || (descSize & (descSize - 1)) !== 0) throw fsCorrupt('ext', `group descriptor size ${descSize}`);
  const firstIno = rev === 0 ? 11 : u32(OFF.firstIno);
  const uuidHex = Buffer.from(bytes.subarray(OFF.uuid, OFF.uuid + 16)).toString('hex');
  const labelBytes = bytes.subarray(OFF.volumeName, OFF.volumeName + 16);
  const nul = labelBytes.indexOf(0);
  const uuidBytes = Uint8Array.from(bytes.subarray(OFF.uuid, OFF.uuid + 16));
  const checksumSeed = (incompat & INCOMPAT.CSUM_SEED) !== 0 ? u32(OFF.checksumSeed) : crc32cUpdate(0xffffffff, uuidBytes);
  return {
    inodesCount, blocksCount, firstDataBlock, blockSize, blocksPerGroup, inodesPerGroup, groupCount, inodeSize, firstIno,
    featureCompat: u32(OFF.featureCompat), featureIncompat: incompat, featureRoCompat: u32(OFF.featureRoCompat),
    uuid: uuidHex.replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5'),
    label: new TextDecoder().decode(nul < 0 ? labelBytes : labelBytes.subarray(0, nul)),
    hashSeed: [u32(OFF.hashSeed), u32(OFF.hashSeed + 4), u32(OFF.hashSeed + 8), u32(OFF.hashSeed + 12)],
    defHashVersion: bytes[OFF.defHashVersion] ?? 0,
    descSize,
    firstMetaBg: u32(OFF.firstMetaBg),
    flags: u32(OFF.flags),
    backupBgs: [u32(OFF.backupBgs), u32(OFF.backupBgs + 4)],
    uuidBytes,
    checksumSeed,
  };
}

/** Throws `E_FS_UNSUPPORTED` naming the first INCOMPAT feature this reader cannot honour. */
export function assertReadable(sb: Superblock): void {
  const unknown = sb.featureIncompat & ~READABLE_INCOMPAT;
  if (unknown === 0) return;
  for (let bit = 1; bit !== 0 && bit <= 0x80000000; bit = (bit * 2) >>> 0) {
    if ((unknown & bit) !== 0) {
      const name = INCOMPAT_NAMES[bit] ?? `unknown incompatible feature 0x${bit.toString(16)}`;
      throw fsUnsupported(fsTypeOf(sb), `feature ${name} is not supported`);
    }
  }
}

/** ext4 when any ext4-only feature is on, ext3 with a journal, else ext2. */
export function fsTypeOf(sb: Superblock): FsType {
  const ext4Incompat = INCOMPAT.EXTENTS | INCOMPAT.BIT64 | INCOMPAT.FLEX_BG | INCOMPAT.INLINE_DATA | INCOMPAT.META_BG
    | INCOMPAT.MMP | INCOMPAT.EA_INODE | INCOMPAT.CSUM_SEED | INCOMPAT.LARGEDIR | INCOMPAT.ENCRYPT | INCOMPAT.CASEFOLD;
  const ext4RoCompat = RO_COMPAT.HUGE_FILE | RO_COMPAT.GDT_CSUM | RO_COMPAT.METADATA_CSUM | 0x20 /* dir_nlink */ | 0x40 /* extra_isize */ | 0x200 /* bigalloc */;
  if ((sb.featureIncompat & ext4Incompat) !== 0 || (sb.featureRoCompat & ext4RoCompat) !== 0) return 'ext4';
  return (sb.featureCompat & COMPAT.HAS_JOURNAL) !== 0 ? 'ext3' : 'ext2';
}

/** True when group `g` holds a superblock and group descriptor copy (sparse_super, sparse_super2). */
export function groupHasSuperblock(sb: Superblock, g: number): boolean {
  if (g === 0) return true;
  if ((sb.featureCompat & COMPAT.SPARSE_SUPER2) !== 0) return g === sb.backupBgs[0] || g === sb.backupBgs[1];
  if ((sb.featureRoCompat & RO_COMPAT.SPARSE_SUPER) === 0) return true;
  if (g <= 1) return true;
  for (const base of [3, 5, 7]) {
    let p = base;
    while (p < g) p *= base;
    if (p === g) return true;
  }
  return false;
}
