import type { DiskTarget } from '../disk/index.js';
import { CofferError } from '../errors/index.js';
import { chunkInFrame, decodeLocatedEntry, DiskIndexReader, isLocatedEntry, isZeroEntry, MovedChunks, readFrameSpans, type FrameToRead, type OpenedSpanFrame, type RemoteReads } from '../repo/index.js';
import type { RestoreProgress } from './restore-disk.js';
import type { SnapshotDisk } from './snapshot-disk.js';

/**
 * Index pages planned at once: 8 × 4096 entries, 8 GiB of disk at 256 KiB blocks. The plan
 * holds an entry per block of the window (~150 bytes), so memory stays ~5 MiB whatever the
 * disk size; a frame used in two windows is read twice.
 */
const WINDOW_PAGES = 8;

/**
 * How a restore reads a remote store (S3, a repository server: a backend that asks for more
 * reads at once than the threads need, {@link Backend.preferredConcurrency}): that many ranged
 * GETs in flight, each up to 2 MiB of a pack (a span of 4 frames of incompressible data, or
 * several smaller ones) across gaps of up to 1 MiB of frames not wanted (a scattered
 * incremental's frames of one pack come in few GETs), and at most 8 MiB fetched and not yet
 * opened; opened by `threads` spans at once (the restored file's writes, not the workers, set
 * the pace; fewer slots lent). Measured at scale 1 (bench/README.md, offsite): whole packs per
 * GET (12 MiB, 32 MiB ahead) took the peak RSS from ~250 to ~320 MiB, 4 MiB reads to 250-266;
 * 2 MiB keeps it at the block path's and still makes ~2.5× fewer requests than it did.
 */
export function remoteReads(preferredConcurrency: number): RemoteReads {
  return { inFlight: preferredConcurrency, bytesInFlight: 8 * 1024 * 1024, gapBytes: 1024 * 1024, maxBytes: 2 * 1024 * 1024 };
}

/** A block of the disk and the located entry it is read by. */
interface PlannedBlock {
  block: number;
  entry: Buffer;
}

/** A frame of the window with every block of the disk it holds. */
interface PlannedFrame extends FrameToRead {
  blocks: PlannedBlock[];
}

/** Adds block `block`, read by located entry `entry`, to the frame of `frames` that holds it. */
function planBlock(frames: Map<string, PlannedFrame>, block: number, entry: Buffer): void {
  const key = entry.toString('latin1', 32, 72); // pack id, frame offset and length
  let frame = frames.get(key);
  if (frame === undefined) {
    const location = decodeLocatedEntry(entry, `entry of block ${block}`);
    frame = { pack: location.pack, frameOffset: location.frameOffset, frameLength: location.frameLength, blocks: [] };
    frames.set(key, frame);
  }
  frame.blocks.push({ block, entry });
}

/**
 * Restores a format 2 disk to a target that takes writes in any order, frame by frame
 * rather than block by block: the disk's entries are planned a window at a time, grouped by
 * the frame that holds them, and every frame is read once (whole packs with one ranged read
 * when the frames follow each other, repo/frame-spans.ts; from a remote store whole packs or
 * most of one per GET, many at once: {@link remoteReads}), decompressed on a worker straight
 * into a shared slot, and its blocks written from there to their places on the disk. So a
 * frame of scattered incremental blocks is decoded once, not once per block; nothing is
 * copied on the main thread (but a remote read of several spans, once, into shared memory); no zero check is needed (a backup stores zero blocks as zero
 * entries). Blocks whose entries name a pack a prune removed (its live chunks repacked,
 * docs/repository-format.md §19.7) are planned the same way at the frames the index segments
 * place their chunks in (MovedChunks.placeOf): once a pack is known gone, no request goes to
 * it; on the first restore after the prune, the reads that find it missing make the segments
 * load, and the window's blocks of missing packs are planned again at their new places. A
 * frame that is damaged, or does not hold the chunk an entry names,
 * falls back block by block to {@link SnapshotDisk.readBlock}, which looks for another
 * place of the chunk and otherwise fails naming the snapshot, disk, chunk and bytes.
 */
export async function restoreByFrames(
  disk: SnapshotDisk,
  target: DiskTarget,
  options: { threads: number; reads?: RemoteReads | undefined; signal?: AbortSignal; onProgress?: (progress: Omit<RestoreProgress, 'disk'>) => void },
): Promise<Omit<RestoreProgress, 'disk'>> {
  const record = disk.disk;
  const blockSize = record.blockSize;
  const index = new DiskIndexReader(disk.repo, record, 1);
  const blockCount = Math.ceil(record.size / blockSize);
  const progress = { bytesDone: 0, bytesTotal: record.size, bytesWritten: 0 };
  const lengthOf = (block: number) => Math.min(blockSize, record.size - block * blockSize);
  const done = (bytes: number, written: boolean) => {
    progress.bytesDone += bytes;
    if (written) progress.bytesWritten += bytes;
    options.onProgress?.({ ...progress });
  };
  const zeros = target.zeroed ? undefined : Buffer.alloc(blockSize);

  /** Block by block through SnapshotDisk: another place of the chunk, or a clear error. */
  const readAlone = async (block: number): Promise<void> => {
    const data = new Uint8Array(new SharedArrayBuffer(lengthOf(block)));
    await disk.readBlock(block, data);
    await target.write(block * blockSize, data);
    done(data.length, true);
  };

  // Chunks a prune repacked (§19.7): the snapshot's entries still name the removed packs.
  // Once one is known gone, its blocks are planned at the places the segments know, as any other.
  const moved = MovedChunks.of(disk.repo);
  /** Packs a read of this restore found missing (hex): not asked again. */
  const missing = new Set<string>();
  /** The segments loading after the first pack was found missing: later reads wait for them rather than ask other removed packs. */
  let learning: Promise<unknown> | undefined;
  const gone = async (pack: Buffer): Promise<boolean> => {
    if (missing.has(pack.toString('hex'))) return true;
    if (learning !== undefined) await learning;
    return moved.knownGone(pack);
  };
  /** Plans blocks of removed packs at the places the segments know; a chunk they place nowhere is read alone (and fails naming it). */
  const placeMoved = async (frames: Map<string, PlannedFrame>, others: number[], blocks: PlannedBlock[]): Promise<void> => {
    for (const { block, entry } of blocks) {
      const place = await moved.placeOf(entry);
      if (place === undefined) others.push(block);
      else planBlock(frames, block, place);
    }
  };

  /**
   * Writes a frame's blocks; `lost` (the first reading of a window): when the frame's pack is
   * missing, its blocks are kept there to be placed again, not read one by one.
   */
  const writeFrameOf = (lost: PlannedBlock[] | undefined) => async (frame: PlannedFrame, opened: OpenedSpanFrame | CofferError): Promise<void> => {
    if (lost !== undefined && opened instanceof CofferError && opened.code === 'E_MISSING_OBJECT') {
      missing.add(frame.pack.toString('hex'));
      learning ??= moved.confirmGone(frame.pack).catch(() => false); // (a failing load is met again, and reported, by the blocks read alone)
      lost.push(...frame.blocks);
      return;
    }
    const plaintext = opened instanceof CofferError ? null : opened.plaintext;
    const writes: Promise<void>[] = [];
    const alone: number[] = [];
    for (const { block, entry } of frame.blocks) {
      const location = decodeLocatedEntry(entry, 'index entry');
      const fits = plaintext !== null && location.chunkLength === lengthOf(block) && holds(opened as OpenedSpanFrame, location);
      if (!fits) {
        alone.push(block);
        continue;
      }
      writes.push(target.write(block * blockSize, plaintext.subarray(location.chunkOffset, location.chunkOffset + location.chunkLength)).then(() => done(location.chunkLength, true)));
    }
    // The slot is lent until every write from it is done.
    await Promise.all(writes);
    for (const block of alone) await readAlone(block);
  };

  const read = (frames: Map<string, PlannedFrame>, lost: PlannedBlock[] | undefined) =>
    readFrameSpans(disk.repo, [...frames.values()], { rehash: false, keep: true, gone, ...(options.reads ? { reads: options.reads, spansInFlight: options.threads } : {}), ...(options.signal ? { signal: options.signal } : {}) }, writeFrameOf(lost));

  try {
    for (let firstPage = 0; firstPage < record.pages.length; firstPage += WINDOW_PAGES) {
      const frames = new Map<string, PlannedFrame>();
      const others: number[] = [];
      /** Blocks whose entry names a pack known gone: placed once the window is scanned. */
      const movedBlocks: PlannedBlock[] = [];
      const zeroWrites: Promise<void>[] = [];
      // The window's pages fetched at once: from S3 one round trip instead of one per page.
      const pageNumbers = Array.from({ length: Math.min(record.pages.length, firstPage + WINDOW_PAGES) - firstPage }, (_, i) => firstPage + i);
      const pages = await Promise.all(pageNumbers.map((page) => index.rawPage(page)));
      let zeroBytesSkipped = 0; // reported once for the window: a thin disk has millions of zero blocks
      pageNumbers.forEach((page, p) => {
        const entries = pages[p] as Buffer[];
        entries.forEach((entry, i) => {
          const block = page * record.entriesPerPage + i;
          if (block >= blockCount) return;
          if (isZeroEntry(entry)) {
            if (zeros === undefined) zeroBytesSkipped += lengthOf(block);
            else zeroWrites.push(target.write(block * blockSize, zeros.subarray(0, lengthOf(block))).then(() => done(lengthOf(block), true)));
            return;
          }
          if (!isLocatedEntry(entry)) {
            others.push(block);
            return;
          }
          if (moved.knownGone(entry.subarray(32, 64))) movedBlocks.push({ block, entry });
          else planBlock(frames, block, entry);
        });
      });
      if (zeroBytesSkipped > 0) done(zeroBytesSkipped, false);
      await placeMoved(frames, others, movedBlocks);
      const lost: PlannedBlock[] = [];
      await read(frames, lost);
      if (lost.length > 0) {
        // The first reads of a repacked snapshot find its old packs gone: once the segments
        // confirm it, those blocks are read from the frames their chunks were copied into.
        const confirmed = new Map<string, boolean>();
        const again = new Map<string, PlannedFrame>();
        const relocated: PlannedBlock[] = [];
        for (const lostBlock of lost) {
          const pack = lostBlock.entry.subarray(32, 64);
          const hex = pack.toString('hex');
          let isGone = confirmed.get(hex);
          if (isGone === undefined) confirmed.set(hex, (isGone = await moved.confirmGone(pack)));
          if (isGone) relocated.push(lostBlock);
          else others.push(lostBlock.block);
        }
        await placeMoved(again, others, relocated);
        await read(again, undefined);
      }
      for (const block of others) await readAlone(block);
      await Promise.all(zeroWrites);
    }
    await target.finish();
  } catch (error) {
    await target.abort();
    throw error;
  }
  return progress;
}

/** Whether the frame's table (the truth) holds the chunk of `location` where it says. */
function holds(opened: OpenedSpanFrame, location: { id: Buffer; chunkOffset: number; chunkLength: number }): boolean {
  try {
    chunkInFrame(opened.table, location.id, location.chunkOffset, location.chunkLength, 'frame');
    return true;
  } catch {
    return false;
  }
}
