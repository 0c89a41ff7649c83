/**
 * The scratch folder of a live backup: where QEMU's fleecing overlays (or libvirt's scratch
 * images) hold the old data of every block the VM overwrites while the backup reads. They
 * grow with what the VM writes during the backup, up to the size of its disks in the worst
 * case; when that filesystem fills, QEMU 7.2 refuses the VM's writes (capture-guard.ts). So a
 * live backup checks the folder's free space before it starts, and ends its capture (failing
 * the backup, not the VM) when the free space falls below a floor.
 */
import * as fs from 'node:fs/promises';
import { CofferError } from '../errors/index.js';

const MiB = 1024 * 1024;

/** The floor's upper bound: enough for about a second of a fast disk's writes after the last look. */
export const SCRATCH_MIN_FREE_CAP = 256 * MiB;

/**
 * The free space a capture keeps in its scratch filesystem by default: 5 % of the
 * filesystem, at least 16 MiB, at most {@link SCRATCH_MIN_FREE_CAP}.
 */
export function defaultScratchMinFree(filesystemBytes: number): number {
  return Math.min(SCRATCH_MIN_FREE_CAP, Math.max(16 * MiB, Math.floor(filesystemBytes * 0.05)));
}

/** Bytes as `12.5 MiB`, for scratch messages. */
export function formatScratchBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/**
 * Checks, before anything changes in the hypervisor, that the scratch folder's filesystem
 * has at least twice the floor free (the floor, and as much again for the VM's writes), and
 * returns the floor to keep while the capture lives.
 * @throws CofferError E_NO_SPACE naming the folder and the figures.
 */
export async function checkScratchSpace(dir: string, vm: string, minFreeBytes?: number): Promise<number> {
  const stats = await fs.statfs(dir);
  const floor = minFreeBytes ?? defaultScratchMinFree(Number(stats.blocks) * Number(stats.bsize));
  const free = Number(stats.bavail) * Number(stats.bsize);
  if (free < 2 * floor) {
    throw new CofferError(
      'E_NO_SPACE',
      `VM ${vm}: the scratch folder ${dir} has ${formatScratchBytes(free)} free; a live backup needs at least ${formatScratchBytes(2 * floor)} there ` +
        `(twice the ${formatScratchBytes(floor)} it keeps free: the old data of what the VM overwrites during the backup goes there). Free some space, or give --scratch-dir another filesystem`,
      { subject: { path: dir } },
    );
  }
  return floor;
}
