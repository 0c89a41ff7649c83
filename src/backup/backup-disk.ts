import { planBlocks, type BlockDevice, type PlannedBlock } from '../blockdev/index.js';
import { forEachLimited, SharedBufferPool } from '../concurrency/index.js';
import { CofferError } from '../errors/index.js';
import { DiskIndexReader, DiskIndexWriter, isZeroEntry, ObjectKind, ZERO_ENTRY, type DiskRecord, type ObjectId, type Repository } from '../repo/index.js';
import type { KnownChunks } from './known-chunks.js';

/** Running totals of one disk's backup, reported as blocks complete. */
export interface DiskProgress {
  disk: string;
  bytesDone: number;
  bytesTotal: number;
  bytesRead: number;
  bytesNew: number;
  bytesStored: number;
}

/** What backing up one disk needs besides the device. */
export interface BackupDiskOptions {
  name: string;
  sourceFormat: string;
  source: string;
  /** The same disk in the parent snapshot: its entries are the fast path for dedup. */
  parent: DiskIndexReader | undefined;
  /** Ids known stored, shared by the disks of one run. */
  known: KnownChunks;
  /** Ids quarantined by verify: never reused, always stored again. */
  damaged: ReadonlySet<string>;
  /** Trust `changed: false` extents (only when the device's reference point is `parent`). */
  trustChangeTracking: boolean;
  signal: AbortSignal | undefined;
  onProgress: ((progress: DiskProgress) => void) | undefined;
}

/** Blocks in flight per worker thread: enough to keep reads and CPU work overlapped. */
const BLOCKS_IN_FLIGHT_PER_THREAD = 4;

/**
 * Backs up one disk: block device → fixed blocks → zero check → hash → dedup (parent entry,
 * then known ids, then the repository) → compress and encrypt → store; then the index pages.
 * Memory is a fixed set of shared buffers (`threads × 4` blocks) plus the index pages in
 * progress, whatever the disk size. Blocks complete out of order; entries go to a
 * {@link DiskIndexWriter} that stores each page once complete.
 */
export async function backupDisk(repo: Repository, device: BlockDevice, options: BackupDiskOptions): Promise<{ record: DiskRecord; progress: DiskProgress }> {
  const blockSize = repo.config.blockSize;
  const parent = options.parent !== undefined && options.parent.disk.blockSize === blockSize ? options.parent : undefined;
  const index = new DiskIndexWriter(repo, device.size, blockSize, repo.config.entriesPerPage);
  const pool = repo.pool;
  const buffers = new SharedBufferPool(blockSize, pool.threads * BLOCKS_IN_FLIGHT_PER_THREAD);
  const writing = new Map<string, Promise<void>>();
  const progress: DiskProgress = { disk: options.name, bytesDone: 0, bytesTotal: device.size, bytesRead: 0, bytesNew: 0, bytesStored: 0 };

  const parentEntry = async (block: number): Promise<Buffer | undefined> =>
    parent === undefined || block >= parent.blockCount ? undefined : parent.entry(block);
  // Change tracking speaks of the same disk: a resized disk gets read in full.
  const trustChangeTracking = options.trustChangeTracking && parent !== undefined && parent.disk.size === device.size;

  const store = async (id: ObjectId, hex: string, data: Uint8Array): Promise<void> => {
    const inFlight = writing.get(hex);
    if (inFlight !== undefined) return inFlight; // the same block content is being stored right now
    const work = (async () => {
      if (!options.damaged.has(hex) && (await repo.hasChunk(id))) return;
      const sealed = await pool.seal(data, ObjectKind.chunk, id);
      await repo.putChunk(id, sealed);
      progress.bytesNew += data.length;
      progress.bytesStored += sealed.length;
    })();
    writing.set(hex, work);
    try {
      await work;
      options.known.add(hex);
    } finally {
      writing.delete(hex);
    }
  };

  const processBlock = async (block: PlannedBlock): Promise<void> => {
    if (options.signal?.aborted) throw interrupted();
    if (block.action === 'zero') {
      index.set(block.index, ZERO_ENTRY);
    } else if (block.action === 'unchanged' && !options.damaged.has(((await parentEntry(block.index)) as Buffer).toString('hex'))) {
      // Unchanged since the parent, and the parent's chunk is not quarantined: reuse it unread.
      index.set(block.index, (await parentEntry(block.index)) as Buffer);
    } else {
      const buffer = await buffers.acquire();
      try {
        const data = await device.read(block.offset, block.length, buffer);
        progress.bytesRead += block.length;
        const hash = await pool.hash(data);
        if (hash.zero || hash.id === null) {
          index.set(block.index, ZERO_ENTRY);
        } else {
          const hex = hash.id.toString('hex');
          const previous = await parentEntry(block.index);
          const fromParent = previous !== undefined && !isZeroEntry(previous) && previous.equals(hash.id) && !options.damaged.has(hex);
          if (!fromParent && !options.known.has(hex)) await store(hash.id, hex, data);
          index.set(block.index, hash.id);
        }
      } finally {
        buffers.release(buffer);
      }
    }
    progress.bytesDone += block.length;
    options.onProgress?.({ ...progress });
  };

  await forEachLimited(planBlocks(device, blockSize, trustChangeTracking), buffers.count, processBlock);
  const pages = await index.finish();
  progress.bytesStored += index.bytesStored;
  return {
    record: {
      name: options.name,
      size: device.size,
      sourceFormat: options.sourceFormat,
      source: options.source,
      blockSize,
      entriesPerPage: repo.config.entriesPerPage,
      pages,
    },
    progress,
  };
}

function interrupted(): CofferError {
  return new CofferError('E_INTERRUPTED', 'backup interrupted; nothing was recorded, and what was stored will be reused by the next run');
}
