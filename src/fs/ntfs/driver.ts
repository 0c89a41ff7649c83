import type { BlockDevice } from '../../blockdev/index.js';
import type { FilesystemDriver } from '../filesystem.js';
import { damagedBecause } from '../fs-errors.js';
import { BOOT_SECTOR_SIZE, isNtfsBootSector, ntfsBootSectorDamage } from './boot-sector.js';
import { NtfsFilesystem } from './ntfs-filesystem.js';

/**
 * Recognises NTFS by its boot sector (the `NTFS    ` signature, the 0x55AA marker, zero FAT
 * fields, power-of-two geometry, $MFT and $MFTMirr inside a volume that fits the device)
 * and opens it read-only.
 */
export const ntfsDriver: FilesystemDriver = {
  name: 'ntfs',
  async probe(device: BlockDevice): Promise<boolean> {
    if (device.size < BOOT_SECTOR_SIZE) return false;
    const sector = await device.read(0, BOOT_SECTOR_SIZE);
    if (!isNtfsBootSector(sector)) return false;
    const view = new DataView(sector.buffer, sector.byteOffset, sector.byteLength);
    const volumeBytes = Number(view.getBigUint64(0x28, true)) * view.getUint16(0x0b, true);
    return volumeBytes <= device.size;
  },
  async openDamaged(device: BlockDevice): Promise<{ damage: string } | undefined> {
    if (device.size < BOOT_SECTOR_SIZE) return undefined;
    return damagedBecause(ntfsBootSectorDamage(await device.read(0, BOOT_SECTOR_SIZE)));
  },
  open(device: BlockDevice): Promise<NtfsFilesystem> {
    return NtfsFilesystem.open(device);
  },
};
