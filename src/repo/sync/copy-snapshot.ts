import { forEachLimited } from '../../concurrency/index.js';
import { CofferError } from '../../errors/index.js';
import { ObjectKind } from '../format/envelope.js';
import { decodeIndexPage, encodeIndexPage, isZeroEntry } from '../format/index-page.js';
import type { DiskRecord, SnapshotManifest } from '../format/manifest.js';
import { indexKey } from '../layout.js';
import type { Repository } from '../repository.js';
import { storedManifest } from '../snapshot-tags.js';
import type { Snapshot } from '../snapshots.js';
import type { ChunkTransfer } from './chunk-transfer.js';
import { adoptWholePacks } from './whole-packs.js';
import type { SyncCounters } from './sync-report.js';

/**
 * Chunks translated at once within a page, so reads, opening, sealing, writes and read-backs
 * overlap: 16 hides an object store's latency (tens of ms a request) at 2 × 16 sealed blocks
 * in memory (8 MiB at the default block size).
 */
const CHUNKS_IN_FLIGHT = 16;

/**
 * An earlier snapshot of the same VM and its copy in the destination: blocks whose source id
 * did not change since it have the copy's destination id, known without reading anything.
 */
export interface CopiedPair {
  source: Snapshot;
  copy: Snapshot;
}

/** What copying a snapshot needs. */
export interface CopyContext {
  src: Repository;
  dst: Repository;
  transfer: ChunkTransfer;
  counters: SyncCounters;
  signal?: AbortSignal | undefined;
  /** Called as the disks are copied, with the bytes of them done so far (several times a page). */
  onPage?: (done: number) => void;
}

/**
 * The destination's manifest for source snapshot `snapshot`: every chunk and index page it
 * names is stored (and read back) in the destination when this resolves; the manifest itself
 * is not written (the caller writes it last). `parent` is the destination id of the parent's
 * copy, or null.
 */
export async function copySnapshotData(context: CopyContext, snapshot: Snapshot, previous: CopiedPair | null, parent: string | null): Promise<SnapshotManifest> {
  const disks: DiskRecord[] = [];
  let done = 0;
  for (const disk of snapshot.disks) {
    const before = previous === null ? null : pairedDisk(previous, disk);
    const pages = await copyDisk(context, disk, before, (bytes) => context.onPage?.(done + bytes));
    done += disk.size;
    disks.push({ ...disk, pages });
  }
  // The manifest is copied as it is, its prune generation (`prunedThrough`) included, so that a
  // copy between repositories sharing keys keeps its id: in the destination a source's record
  // name is not listed and a backup on it asks each pack, as without a mark; `none` reads the
  // destination's records from its first (pack-removals.ts). Its own tags too: those
  // set with `coffer tag` are carried as a tag record (carry-tags.ts), never written into the manifest.
  const manifest = storedManifest(snapshot);
  return { ...manifest, parent, disks };
}

/** The same disk in the earlier pair, when its blocks line up (same name and geometry). */
function pairedDisk(pair: CopiedPair, disk: DiskRecord): { source: DiskRecord; copy: DiskRecord } | null {
  const source = pair.source.disks.find((d) => d.name === disk.name);
  const copy = pair.copy.disks.find((d) => d.name === disk.name);
  if (source === undefined || copy === undefined) return null;
  const lines = (d: DiskRecord) => d.blockSize === disk.blockSize && d.entriesPerPage === disk.entriesPerPage;
  if (!lines(source) || !lines(copy) || source.pages.length !== copy.pages.length || source.size !== copy.size) return null;
  return { source, copy };
}

/**
 * Pages whose entries are still on their way (format 2: a chunk's entry is known once its
 * pack is stored) kept open while the next pages are copied; beyond that the destination
 * closes its pack early. A page is 4096 blocks (1 GiB at the default block size), a pack
 * 16 MiB: a page's chunks are almost all placed by the time the next page is translated.
 */
const PAGES_IN_FLIGHT = 2;

/**
 * Copies one disk page by page (the entries of a few pages in memory at a time); returns the
 * destination page ids. A page is written once every chunk it names is stored in the
 * destination and read back; the destination closes its last pack at the end of the disk.
 */
async function copyDisk(context: CopyContext, disk: DiskRecord, before: { source: DiskRecord; copy: DiskRecord } | null, onProgress: (bytes: number) => void): Promise<string[]> {
  const { dst, counters, transfer } = context;
  const destination = transfer.destination;
  const pageBytes = disk.blockSize * disk.entriesPerPage;
  const wholePacks = transfer.wholePacks;
  if (wholePacks !== null) {
    const entries = async function* () {
      for (const page of disk.pages) yield* await readPage(context.src, page, counters, 'source');
    };
    await adoptWholePacks({ src: context.src, counters }, entries(), wholePacks);
  }
  const pages: string[] = new Array(disk.pages.length);
  const writing: Promise<void>[] = [];
  for (let p = 0; p < disk.pages.length; p++) {
    if (context.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'sync interrupted (run it again: what was sent is kept)');
    const sourcePage = disk.pages[p] as string;
    // Same page id: same entries, so the copy's page translates it whole. Otherwise entries
    // are compared position by position (a disk that grew or shrank still lines up).
    const aligned = before !== null && p < before.source.pages.length;
    if (aligned && before.source.pages[p] === sourcePage) {
      pages[p] = before.copy.pages[p] as string;
      counters.indexPagesReused++;
    } else {
      const entries = await readPage(context.src, sourcePage, counters, 'source');
      const earlier = aligned ? await Promise.all([readPage(context.src, before.source.pages[p] as string, counters, 'source'), readPage(dst, before.copy.pages[p] as string, counters, 'destination')]) : null;
      const translated: Promise<Buffer>[] = new Array(entries.length);
      let finished = 0;
      await forEachLimited(entries.keys(), CHUNKS_IN_FLIGHT, async (i) => {
        const entry = entries[i] as Buffer;
        const reused = earlier?.[1][i];
        if (isZeroEntry(entry)) {
          translated[i] = Promise.resolve(destination.zeroEntry);
        } else if (earlier !== null && earlier[0][i]?.equals(entry) === true && reused !== undefined) {
          translated[i] = Promise.resolve(reused);
          counters.chunksReused++;
        } else {
          translated[i] = (await transfer.translate(entry)).entry;
        }
        finished++;
        if (finished % 64 === 0) onProgress(Math.min(disk.size, p * pageBytes + finished * disk.blockSize));
      });
      const page = p;
      const written = Promise.all(translated).then(async (placed) => {
        pages[page] = await writePage(dst, encodeIndexPage(placed), counters);
      });
      written.catch(() => undefined); // awaited below
      writing.push(written);
      if (writing.length > PAGES_IN_FLIGHT) {
        await destination.flush();
        await writing.shift();
      }
    }
    onProgress(Math.min(disk.size, (p + 1) * pageBytes));
  }
  await destination.endDisk();
  for (const written of writing) await written;
  return pages;
}

/** The entries of an index page, read and opened (rehashed), counting the bytes. */
export async function readPage(repo: Repository, hex: string, counters: SyncCounters, side: 'source' | 'destination'): Promise<Buffer[]> {
  const key = indexKey(hex);
  const blob = await repo.backend.get(key);
  if (side === 'source') counters.bytesRead += blob.length;
  else counters.bytesReadFromDestination += blob.length;
  return decodeIndexPage(repo.codec.open(blob, ObjectKind.indexPage, key, Buffer.from(hex, 'hex')), hex);
}

/** Stores an index page unless present, and reads a new one back; returns its id. */
async function writePage(dst: Repository, plaintext: Buffer, counters: SyncCounters): Promise<string> {
  const { id, bytesStored } = await dst.putIndexPage(plaintext);
  const hex = id.toString('hex');
  if (bytesStored > 0) {
    counters.indexPagesSent++;
    counters.indexBytesSent += bytesStored;
    counters.bytesWritten += bytesStored;
    try {
      await readPage(dst, hex, counters, 'destination');
    } catch (error) {
      throw new CofferError('E_VERIFY_FAILED', `index page ${hex} written to ${dst.location} does not read back intact: ${(error as Error).message}`, {
        subject: { repository: dst.location, object: indexKey(hex) },
        cause: error,
      });
    }
  }
  return hex;
}
