import type { BlockDevice } from '../blockdev/index.js';
import type { Filesystem, FilesystemDriver } from './filesystem.js';

/** Every filesystem reader, tried in this order (each probe looks at its own superblock only). */
export const FILESYSTEM_DRIVERS: readonly FilesystemDriver[] = [];

/**
 * The filesystem on `device`, found by its superblock whatever the partition type says;
 * undefined when no reader recognises one. Throws what the reader's `open` throws
 * (`E_FS_CORRUPT`, `E_FS_UNSUPPORTED`) when a superblock is recognised but unusable.
 */
export async function openFilesystem(device: BlockDevice, drivers: readonly FilesystemDriver[] = FILESYSTEM_DRIVERS): Promise<Filesystem | undefined> {
  for (const driver of drivers) {
    if (await driver.probe(device)) return driver.open(device);
  }
  return undefined;
}
