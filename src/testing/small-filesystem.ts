/**
 * A small tmpfs for tests of full filesystems (a live backup's scratch folder that fills):
 * mounted at a new folder, needs root (CI runs as root).
 */
import * as fs from 'node:fs/promises';
import { runTool } from './disks.js';

/**
 * Makes the folder `dir` and mounts a tmpfs of `size` bytes there (`mode`, e.g. `1777` for a
 * folder another user's QEMU writes in); returns its unmount (idempotent, never throws).
 */
export async function mountSmallFilesystem(dir: string, size: number, options: { mode?: string } = {}): Promise<() => Promise<void>> {
  await fs.mkdir(dir);
  await runTool('mount', ['-t', 'tmpfs', '-o', `size=${size}${options.mode !== undefined ? `,mode=${options.mode}` : ''}`, 'tmpfs', dir]);
  let unmounted: Promise<void> | undefined;
  return () => {
    unmounted ??= runTool('umount', [dir]).then(() => undefined, () => undefined);
    return unmounted;
  };
}
