import type { BlockDevice } from '../../blockdev/index.js';
import { isCofferError } from '../../errors/index.js';
import type { Filesystem, FilesystemDriver } from '../filesystem.js';
import { BlockReader } from './block-reader.js';
import { ExtFilesystem } from './ext-filesystem.js';
import { GroupDescriptorTable } from './group-descriptor-table.js';
import { assertReadable, EXT_MAGIC, fsTypeOf, parseSuperblock, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, type Superblock } from './superblock.js';

/** Where s_magic lies in the superblock. */
const MAGIC_OFFSET = 0x38;
import { fsCorrupt } from '../fs-errors.js';

async function readSuperblock(device: BlockDevice): Promise<Superblock> {
  if (device.size < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE) throw fsCorrupt('ext', `device of ${device.size} bytes is too small`);
  return parseSuperblock(await device.read(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE));
}

/**
 * The ext2/ext3/ext4 reader. `probe` accepts a device whose superblock has the magic and a
 * self-consistent geometry (block size, blocks and inodes per group, inode count = groups ×
 * inodes per group); `open` also refuses INCOMPAT features it cannot read
 * (`E_FS_UNSUPPORTED`), checks the group descriptors (falling back to their backups,
 * group-descriptor-table.ts) and that the root directory's inode reads. What it had to
 * read around (a backup superblock, backup descriptors) is the filesystem's `notice`.
 */
export const extDriver: FilesystemDriver = {
  name: 'ext',
  async probe(device: BlockDevice): Promise<boolean> {
    try {
      await readSuperblock(device);
      return true;
    } catch (error) {
      if (isCofferError(error, 'E_FS_CORRUPT')) return false;
      throw error;
    }
  },
  async openDamaged(device: BlockDevice): Promise<Filesystem | { damage: string } | undefined> {
    if (device.size < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE) return undefined;
    const bytes = await device.read(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE);
    let why: string | undefined;
    if (bytes[MAGIC_OFFSET] === (EXT_MAGIC & 0xff) && bytes[MAGIC_OFFSET + 1] === EXT_MAGIC >> 8) {
      try {
        parseSuperblock(bytes);
      } catch (error) {
        if (!isCofferError(error, 'E_FS_CORRUPT')) throw error;
        why = error.message.replace(/^ext: /, '');
      }
    }
    const backup = await findBackupSuperblock(device);
    if (backup === undefined) return why === undefined ? undefined : { damage: why };
    const notice = `the primary superblock is damaged (${why ?? 'no ext superblock magic'}): read through the backup superblock at block ${backup.block} (as e2fsck -b ${backup.block} would)`;
    return openWith(device, backup.sb, notice);
  },
  open: async (device: BlockDevice): Promise<Filesystem> => openWith(device, await readSuperblock(device)),
};

async function openWith(device: BlockDevice, sb: Superblock, notice?: string): Promise<Filesystem> {
  assertReadable(sb);
  const type = fsTypeOf(sb);
  const blocks = new BlockReader(device, sb.blockSize, sb.blocksCount);
  const fs = new ExtFilesystem(device, type, sb, blocks, await GroupDescriptorTable.open(sb, blocks, type), notice);
  await fs.checkRoot();
  return fs;
}

/** s_block_group_nr: the group a superblock copy lies in (0 for the primary). */
const BLOCK_GROUP_NR_OFFSET = 0x5a;

/**
 * Groups whose backup superblock is looked for, in order: group 1, where mke2fs always writes
 * one (sparse_super keeps groups 0, 1 and powers of 3, 5, 7; sparse_super2 names group 1
 * first), then the next copies sparse_super keeps, for when group 1's is damaged too.
 */
const BACKUP_SUPERBLOCK_GROUPS = [1, 3, 5, 7, 9];

/**
 * A backup superblock, found as e2fsck does without the primary: for each block size, at the
 * start of group 1 with mke2fs's default of 8 × block size blocks per group (then groups 3, 5,
 * 7 and 9, where e2fsck needs `-b` to be told). It must parse, name its group, and agree with
 * that geometry.
 */
async function findBackupSuperblock(device: BlockDevice): Promise<{ sb: Superblock; block: number } | undefined> {
  for (const group of BACKUP_SUPERBLOCK_GROUPS) {
    for (let blockSize = 1024; blockSize <= 65536; blockSize *= 2) {
      const block = (blockSize === 1024 ? 1 : 0) + group * 8 * blockSize;
      const offset = block * blockSize;
      if (offset + SUPERBLOCK_SIZE > device.size) break;
      const bytes = await device.read(offset, SUPERBLOCK_SIZE);
      if (new DataView(bytes.buffer, bytes.byteOffset, SUPERBLOCK_SIZE).getUint16(BLOCK_GROUP_NR_OFFSET, true) !== group) continue;
      try {
        const sb = parseSuperblock(bytes);
        if (sb.blockSize === blockSize && sb.blocksPerGroup === 8 * blockSize && sb.firstDataBlock === (blockSize === 1024 ? 1 : 0) && group < sb.groupCount) return { sb, block };
      } catch (error) {
        if (!isCofferError(error, 'E_FS_CORRUPT')) throw error;
      }
    }
  }
  return undefined;
}
