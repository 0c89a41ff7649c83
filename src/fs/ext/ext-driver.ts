import type { BlockDevice } from '../../blockdev/index.js';
import { isCofferError } from '../../errors/index.js';
import type { Filesystem, FilesystemDriver } from '../filesystem.js';
import { BlockReader } from './block-reader.js';
import { ExtFilesystem } from './ext-filesystem.js';
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
 * (`E_FS_UNSUPPORTED`) and checks that the root directory's inode reads.
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
  async damage(device: BlockDevice): Promise<string | undefined> {
    if (device.size < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE) return undefined;
    const bytes = await device.read(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE);
    if (bytes[MAGIC_OFFSET] !== (EXT_MAGIC & 0xff) || bytes[MAGIC_OFFSET + 1] !== EXT_MAGIC >> 8) return undefined;
    try {
      parseSuperblock(bytes);
      return undefined;
    } catch (error) {
      return isCofferError(error, 'E_FS_CORRUPT') ? error.message.replace(/^ext: /, '') : undefined;
    }
  },
  async open(device: BlockDevice): Promise<Filesystem> {
    const sb = await readSuperblock(device);
    assertReadable(sb);
    const fs = new ExtFilesystem(device, fsTypeOf(sb), sb, new BlockReader(device, sb.blockSize, sb.blocksCount));
    const root = await fs.root();
    if (root.type !== 'directory') throw fsCorrupt(fs.type, 'the root inode is not a directory');
    return fs;
  },
};
