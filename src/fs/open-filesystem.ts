import type { BlockDevice } from '../blockdev/index.js';
import { extDriver } from './ext/index.js';
import { fatDriver } from './fat/index.js';
import { ntfsDriver } from './ntfs/index.js';
import { xfsDriver } from './xfs/index.js';
import type { Filesystem, FilesystemDriver } from './filesystem.js';
import { fsCorrupt } from './fs-errors.js';

/**
 * Every filesystem reader, tried in this order (each probe looks at its own superblock only).
 * FAT comes last: its boot sector has the fewest magic bytes.
 */
export const FILESYSTEM_DRIVERS: readonly FilesystemDriver[] = [extDriver, xfsDriver, ntfsDriver, fatDriver];

/**
 * The filesystem on `device`, found by its superblock whatever the partition type says;
 * undefined when no reader recognises one. Throws what the reader's `open` throws
 * (`E_FS_CORRUPT`, `E_FS_UNSUPPORTED`) when a superblock is recognised but unusable, and
 * `E_FS_CORRUPT` when none is but a driver finds its signature on a damaged one; a damaged
 * one a driver reads around (`openDamaged`) is returned with its `notice`.
 */
export async function openFilesystem(device: BlockDevice, drivers: readonly FilesystemDriver[] = FILESYSTEM_DRIVERS): Promise<Filesystem | undefined> {
  for (const driver of drivers) {
    const recognised = await driver.probe(device).catch((error: unknown) => {
      if (error instanceof RangeError) return false; // a device too small for this superblock
      throw error;
    });
    if (recognised) return driver.open(device);
  }
  for (const driver of drivers) {
    const found = await driver.openDamaged?.(device);
    if (found === undefined) continue;
    if ('damage' in found) throw fsCorrupt(driver.name, `the volume has its signature but does not read (damaged): ${found.damage}`);
    return found;
  }
  return undefined;
}
