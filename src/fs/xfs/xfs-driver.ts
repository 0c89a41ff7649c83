import type { BlockDevice } from '../../blockdev/index.js';
import type { Filesystem, FilesystemDriver } from '../filesystem.js';
import { damagedBecause, fsCorrupt } from '../fs-errors.js';
import { looksLikeXfs, parseSuperblock, SUPERBLOCK_BYTES, xfsSuperblockDamage } from './superblock.js';
import { XfsFilesystem } from './xfs-filesystem.js';

/** The superblock is in the first sector, at most 32 KiB (its CRC covers the whole sector). */
const PROBE_BYTES = 32 * 1024;

/**
 * The XFS reader: v5 filesystems (with CRCs), read-only. `probe` needs the `XFSB` magic and
 * a consistent geometry; `open` also checks the superblock CRC and refuses v4 filesystems,
 * realtime devices and unknown incompatible features (`E_FS_UNSUPPORTED`).
 */
export const xfsDriver: FilesystemDriver = {
  name: 'xfs',
  async probe(device: BlockDevice): Promise<boolean> {
    if (device.size < SUPERBLOCK_BYTES) return false;
    const bytes = await device.read(0, Math.min(PROBE_BYTES, device.size));
    return looksLikeXfs(bytes);
  },
  async openDamaged(device: BlockDevice): Promise<{ damage: string } | undefined> {
    if (device.size < SUPERBLOCK_BYTES) return undefined;
    return damagedBecause(xfsSuperblockDamage(await device.read(0, Math.min(PROBE_BYTES, device.size))));
  },
  async open(device: BlockDevice): Promise<Filesystem> {
    if (device.size < SUPERBLOCK_BYTES) throw fsCorrupt('xfs', `device of ${device.size} bytes is too small`);
    const bytes = await device.read(0, Math.min(PROBE_BYTES, device.size));
    const sb = parseSuperblock(bytes);
    if (sb.dataBlocks * sb.blockSize > device.size) throw fsCorrupt('xfs', `the filesystem (${sb.dataBlocks * sb.blockSize} bytes) is larger than its device (${device.size} bytes)`);
    return new XfsFilesystem(device, sb);
  },
};
