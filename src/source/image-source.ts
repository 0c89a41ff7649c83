import { openDiskImage } from '../disk/index.js';
import type { SourceDisk, VmSource } from './vm-source.js';

/**
 * A VM given as disk image files or block devices, each in any format Coffer reads (detected
 * by content; a chain is given by its top image). Disks are named `disk0`, `disk1` … in the
 * order given, so the same command line matches the same disks across snapshots. No
 * definition.
 */
export async function openImageSource(vm: string, paths: readonly string[]): Promise<VmSource> {
  const disks: SourceDisk[] = [];
  try {
    for (const [i, path] of paths.entries()) {
      const image = await openDiskImage(path);
      disks.push({ name: `disk${i}`, format: image.format, location: path, device: image });
    }
  } catch (error) {
    await Promise.all(disks.map((disk) => disk.device.close()));
    throw error;
  }
  let closed = false;
  return {
    vm,
    definition: null,
    disks,
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(disks.map((disk) => disk.device.close()));
    },
  };
}
