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

/** The bytes free for this process's user on the filesystem of `dir` (`bavail`: not root's reserve). */
export async function scratchFreeBytes(dir: string): Promise<number> {
  const stats = await fs.statfs(dir);
  return Number(stats.bavail) * Number(stats.bsize);
}

/** How often a live capture's scratch filesystem is looked at. */
export const SCRATCH_POLL_MS = 100;

/** Options of {@link ScratchWatch.start}. */
export interface ScratchWatchOptions {
  /** The VM, for the message. */
  vm: string;
  dir: string;
  minFreeBytes: number;
  /** Told once, when the free space falls below `minFreeBytes`: end the capture at once. */
  onLow: (error: CofferError) => void;
  pollMs?: number;
}

/**
 * Looks at the scratch filesystem's free space every {@link SCRATCH_POLL_MS} ms while a
 * capture lives, and says once when it falls below the floor, with the E_NO_SPACE the backup
 * fails with. A folder that cannot be looked at (removed by the capture's own end) is not watched.
 */
export class ScratchWatch {
  private stopped = false;
  private polling = false;
  private readonly timer: NodeJS.Timeout;

  private constructor(private readonly options: ScratchWatchOptions) {
    this.timer = setInterval(() => void this.poll(), options.pollMs ?? SCRATCH_POLL_MS);
    this.timer.unref();
  }

  static start(options: ScratchWatchOptions): ScratchWatch {
    return new ScratchWatch(options);
  }

  /** Idempotent. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  private async poll(): Promise<void> {
    if (this.polling || this.stopped) return;
    this.polling = true;
    try {
      const free = await scratchFreeBytes(this.options.dir);
      const { dir, minFreeBytes, vm } = this.options;
      if (free < minFreeBytes && !this.stopped) {
        this.stop();
        this.options.onLow(
          new CofferError(
            'E_NO_SPACE',
            `VM ${vm}: the scratch folder ${dir} fell to ${formatScratchBytes(free)} free (the least allowed is ${formatScratchBytes(minFreeBytes)}) while the VM wrote during the backup; ` +
              "the capture was ended so that the VM's writes are not refused, and nothing of this backup is recorded. Give --scratch-dir a filesystem with room for what the VM writes during a backup",
            { subject: { path: dir } },
          ),
        );
      }
    } catch {
      // Not there any more: the capture is ending.
    } finally {
      this.polling = false;
    }
  }
}
