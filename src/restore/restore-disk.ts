import { forEachLimited, SharedBufferPool } from '../concurrency/index.js';
import { CofferError } from '../errors/index.js';
import type { DiskTarget } from '../disk/index.js';
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
 * Writes one disk of a snapshot to a target, byte-identical to the source. Zero blocks stay
 * holes on a new file and are written as zeros on a device or a pipe. Blocks are fetched
 * and opened in parallel; a sequential target (a pipe) gets them in order. The target is
 * finished (made durable) on success and aborted (a created file removed) on failure.
 */
export async function restoreDisk(
  disk: SnapshotDisk,
  target: DiskTarget,
  options: { threads: number; signal?: AbortSignal; onProgress?: (progress: RestoreProgress) => void },
): Promise<RestoreProgress> {
  const blockSize = disk.blockSize;
  const blocks = Math.ceil(disk.size / blockSize);
  const buffers = new SharedBufferPool(blockSize, Math.max(2, options.threads * BLOCKS_IN_FLIGHT_PER_THREAD));
  const progress: RestoreProgress = { disk: disk.disk.name, bytesDone: 0, bytesTotal: disk.size, bytesWritten: 0 };
  // For a sequential target each block waits for the previous one's write: the turn is
  // taken synchronously when the block is taken, so the order is the block order.
  let previousWrite: Promise<void> = Promise.resolve();

  const restoreBlock = async (block: number): Promise<void> => {
    const turn = previousWrite;
    let myWrite!: () => void;
    previousWrite = new Promise<void>((resolve) => (myWrite = resolve));
    try {
      await restoreOne(block, turn);
    } finally {
      myWrite();
    }
  };

  const restoreOne = async (block: number, turn: Promise<void>): Promise<void> => {
    if (options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'restore interrupted');
    const offset = block * blockSize;
    const length = Math.min(blockSize, disk.size - offset);
    const isZero = await disk.isZeroBlock(block);
    if (isZero && target.zeroed) {
      progress.bytesDone += length;
      options.onProgress?.({ ...progress });
      return;
    }
    const buffer = await buffers.acquire();
    try {
      const data = buffer.subarray(0, length);
      if (isZero) data.fill(0);
      else await disk.readBlock(block, data);
      if (target.sequential) await turn;
      await target.write(offset, data);
      progress.bytesWritten += length;
    } finally {
      buffers.release(buffer);
    }
    progress.bytesDone += length;
    options.onProgress?.({ ...progress });
  };

  try {
    await forEachLimited(range(blocks), buffers.count, restoreBlock);
    await target.finish();
  } catch (error) {
    await target.abort();
    throw error;
  }
  return progress;
}

function* range(count: number): Iterable<number> {
  for (let i = 0; i < count; i++) yield i;
}
