import { copyDevice, type DiskTarget } from '../disk/index.js';
import type { Backend } from '../repo/index.js';
import { remoteReads, restoreByFrames } from './restore-frames.js';
import type { SnapshotDisk } from './snapshot-disk.js';

/** Progress of a restore. */
export interface RestoreProgress {
  disk: string;
  bytesDone: number;
  bytesTotal: number;
  /** Bytes fetched and written (zero blocks on a zeroed target cost nothing). */
  bytesWritten: number;
}

/** Blocks fetched ahead per worker thread: enough to keep the decoding busy from a local disk. */
const BLOCKS_IN_FLIGHT_PER_THREAD = 4;
/**
 * The most block bytes a restore keeps in flight when the backend asks for more reads at once
 * than the threads need ({@link Backend.preferredConcurrency}: S3 asks for 32). Each block in
 * flight holds its plaintext buffer and, while it is fetched and opened, its stored form (at
 * most as large): so at most 2 × 32 MiB, 64 blocks of 256 KiB from S3 as 2 × 8 MiB.
 */
const MAX_READ_AHEAD_BYTES = 32 * 1024 * 1024;

/**
 * Blocks a restore keeps in flight: `threads × 4`, or more for a backend that prefers more
 * requests at once, within {@link MAX_READ_AHEAD_BYTES}.
 */
export function restoreReadAhead(threads: number, blockSize: number, preferredConcurrency: number | undefined, blocksPerFetch = 1): number {
  // Format 2 fetches and decodes a frame of up to 8 blocks at once: as many frames in flight
  // as v1 had chunks, within the same byte bound.
  const forThreads = Math.min(threads * BLOCKS_IN_FLIGHT_PER_THREAD * blocksPerFetch, Math.max(threads * BLOCKS_IN_FLIGHT_PER_THREAD, Math.floor(MAX_READ_AHEAD_BYTES / blockSize)));
  const forBackend = Math.min(preferredConcurrency ?? 0, Math.floor(MAX_READ_AHEAD_BYTES / blockSize));
  return Math.max(forThreads, forBackend);
}

/**
 * Writes one disk of a snapshot to a target, byte-identical to the source. A format 2 disk
 * going to a target that takes writes in any order (a file, a block device) is restored frame
 * by frame (restore-frames.ts: each frame read and decoded once, written from its slot); from
 * a backend that asks for more reads at once than the threads need (S3, a repository server)
 * with up to 2 MiB of a pack per read and many reads in flight ({@link remoteReads}). Otherwise the
 * snapshot's disk is a block device, so this is a copy of it (disk/copy-device.ts) in whole
 * blocks, which {@link SnapshotDisk} fetches and opens on the worker pool without its cache, as
 * many at once as {@link restoreReadAhead} says.
 */
export async function restoreDisk(
  disk: SnapshotDisk,
  target: DiskTarget,
  options: { threads: number; preferredConcurrency?: number | undefined; signal?: AbortSignal; onProgress?: (progress: RestoreProgress) => void },
): Promise<RestoreProgress> {
  const name = disk.disk.name;
  if (disk.repo.config.version === 2 && !target.sequential) {
    const remote = (options.preferredConcurrency ?? 0) > options.threads + 1;
    const progress = await restoreByFrames(disk, target, {
      threads: options.threads,
      ...(remote ? { reads: remoteReads(options.preferredConcurrency ?? 0) } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: (p) => options.onProgress?.({ disk: name, ...p }) } : {}),
    });
    return { disk: name, ...progress };
  }
  const progress = await copyDevice(disk, target, {
    blockSize: disk.blockSize,
    inFlight: restoreReadAhead(options.threads, disk.blockSize, options.preferredConcurrency, disk.blocksPerFetch),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onProgress ? { onProgress: (p) => options.onProgress?.({ disk: name, ...p }) } : {}),
  });
  return { disk: name, ...progress };
}
