import { planBlocks } from '../../blockdev/index.js';
import { forEachLimited } from '../../concurrency/index.js';
import { CofferError, isCofferError } from '../../errors/index.js';
import type { SnapshotDisk } from '../snapshot-disk.js';
import type { DiskCheck } from './report.js';

/** At most this many unreadable ranges are listed per disk (their count is in the failures). */
const MAX_UNREADABLE_LISTED = 100;

/**
 * Reads every block of a snapshot's disk back through the repository, as a restore would,
 * without writing it anywhere: each chunk is fetched, authenticated, decompressed and checked
 * against its id. A block that fails is listed with its reason and the read goes on, so one
 * bad chunk does not hide another.
 */
export async function readWholeDisk(disk: SnapshotDisk, options: { inFlight: number; signal?: AbortSignal }): Promise<DiskCheck> {
  const check: DiskCheck = { name: disk.disk.name, size: disk.size, bytesRead: 0, unreadable: [] };
  let unreadableCount = 0;
  await forEachLimited(planBlocks(disk, disk.blockSize, false), options.inFlight, async (block) => {
    if (options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'test restore interrupted');
    if (block.action === 'zero') return;
    try {
      await disk.read(block.offset, block.length);
      check.bytesRead += block.length;
    } catch (error) {
      if (!isCofferError(error) || error.code === 'E_INTERRUPTED') throw error;
      unreadableCount++;
      if (check.unreadable.length < MAX_UNREADABLE_LISTED) check.unreadable.push({ offset: block.offset, length: block.length, error: error.message });
    }
  });
  check.unreadable.sort((a, b) => a.offset - b.offset);
  if (unreadableCount > check.unreadable.length) {
    check.unreadable.push({ offset: -1, length: 0, error: `${unreadableCount - check.unreadable.length} more unreadable blocks not listed` });
  }
  return check;
}
