import { copyDevice, type DiskTarget } from '../disk/index.js';
import type { SnapshotDisk } from './snapshot-disk.js';

/** Progress of a restore. */
export interface RestoreProgress {
  disk: string;
  bytesDone: number;
  bytesTotal: number;
  /** Bytes fetched and written (zero blocks on a zeroed target cost nothing). */
  bytesWritten: number;
}

/** Blocks fetched ahead per worker thread. */
const BLOCKS_IN_FLIGHT_PER_THREAD = 4;

/**
 * Writes one disk of a snapshot to a target, byte-identical to the source: the snapshot's
 * disk is a block device, so this is a copy of it (disk/copy-device.ts) in whole blocks,
 * which {@link SnapshotDisk} fetches and opens on the worker pool without its cache.
 */
export async function restoreDisk(
  disk: SnapshotDisk,
  target: DiskTarget,
  options: { threads: number; signal?: AbortSignal; onProgress?: (progress: RestoreProgress) => void },
): Promise<RestoreProgress> {
  const name = disk.disk.name;
  const progress = await copyDevice(disk, target, {
    blockSize: disk.blockSize,
    inFlight: options.threads * BLOCKS_IN_FLIGHT_PER_THREAD,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onProgress ? { onProgress: (p) => options.onProgress?.({ disk: name, ...p }) } : {}),
  });
  return { disk: name, ...progress };
}
