import type { BlockDevice } from '../../blockdev/index.js';
import { isCofferError } from '../../errors/index.js';
import type { FilesystemDriver } from '../filesystem.js';
import { BOOT_SECTOR_SIZE, parseBootSector } from './boot-sector.js';
import { FatFilesystem } from './fat-filesystem.js';

/**
 * FAT12, FAT16 and FAT32. `probe` accepts a boot sector with the jump instruction, the 0x55AA
 * signature and a consistent BPB (sizes that are powers of two, FATs large enough for the
 * clusters, a volume that fits the device): not an NTFS or exFAT boot sector (no FATs), not
 * an MBR (no BPB). A FAT32 of an unknown version probes true so that `open` can say why it
 * cannot read it.
 */
export const fatDriver: FilesystemDriver = {
  name: 'fat',
  async probe(device: BlockDevice): Promise<boolean> {
    if (device.size < BOOT_SECTOR_SIZE) return false;
    try {
      parseBootSector(await device.read(0, BOOT_SECTOR_SIZE), device.size);
      return true;
    } catch (error) {
      if (isCofferError(error, 'E_FS_CORRUPT')) return false;
      if (isCofferError(error, 'E_FS_UNSUPPORTED')) return true;
      throw error;
    }
  },
  /** FAT's signature is weak: the 0x55AA marker with a `FAT12`/`FAT16`/`FAT32` file-system type string where mkfs puts it. */
  async openDamaged(device: BlockDevice): Promise<{ damage: string } | undefined> {
    if (device.size < BOOT_SECTOR_SIZE) return undefined;
    const sector = await device.read(0, BOOT_SECTOR_SIZE);
    const text = (at: number): string => String.fromCharCode(...sector.subarray(at, at + 5));
    const marked = sector[0x1fe] === 0x55 && sector[0x1ff] === 0xaa && (/^FAT1[26]$/.test(text(0x36)) || text(0x52) === 'FAT32');
    if (!marked) return undefined;
    try {
      parseBootSector(sector, device.size);
      return undefined;
    } catch (error) {
      return isCofferError(error, 'E_FS_CORRUPT') ? { damage: error.message.replace(/^fat: /, '') } : undefined;
    }
  },
  open: (device: BlockDevice) => FatFilesystem.open(device),
};
