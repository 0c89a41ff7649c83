import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir } from './daemons.js';
import { requireTools, runTool } from './disks.js';

/** A small real ext4 filesystem mounted through a loop device, for tests of a filling disk. */
export interface SmallExt4 {
  /** Where it is mounted. */
  readonly mountPoint: string;
  /** A folder beside the mount (not on it), for what must not fill up. */
  readonly beside: string;
  /** Unmounts it and removes everything. */
  remove(): Promise<void>;
}

/**
 * Makes an ext4 image of `sizeBytes` with mke2fs (`-b blockSize` when given, no blocks reserved
 * for root) and mounts it. Needs root, mke2fs and a loop device.
 */
export async function mountSmallExt4(prefix: string, sizeBytes: number, options: { blockSize?: number } = {}): Promise<SmallExt4> {
  await requireTools('mke2fs', 'mount', 'umount');
  const dir = await makeTempDir(prefix);
  const image = join(dir.path, 'ext4.img');
  await writeFile(image, '');
  await truncate(image, sizeBytes);
  await runTool('mke2fs', ['-q', '-t', 'ext4', ...(options.blockSize === undefined ? [] : ['-b', String(options.blockSize)]), '-m', '0', '-F', image]);
  const mountPoint = join(dir.path, 'mnt');
  await runTool('mkdir', [mountPoint]);
  try {
    await runTool('mount', ['-o', 'loop', image, mountPoint]);
  } catch (error) {
    await dir.remove();
    throw error;
  }
  return {
    mountPoint,
    beside: dir.path,
    remove: async () => {
      await runTool('umount', [mountPoint]).catch(() => undefined);
      await dir.remove();
    },
  };
}
