import { forEachLimited } from '../../concurrency/index.js';
import { CofferError, isCofferError } from '../../errors/index.js';
import { ChunkIndex } from '../chunk-index.js';
import { ObjectKind } from '../format/envelope.js';
import { isZeroEntry } from '../format/index-page.js';
import type { DiskRecord } from '../format/manifest.js';
import { chunkKey } from '../layout.js';
import type { Repository } from '../repository.js';
import type { Snapshot } from '../snapshots.js';
import { checkPackedChunks, listStoredPacks } from '../verify-packs.js';
import { readPage } from './copy-snapshot.js';
import type { DestinationChunks } from './destination-chunks.js';
import { LooseDestination } from './loose-destination.js';
import { PackedDestination } from './packed-destination.js';
import type { SyncCounters } from './sync-report.js';

/**
 * Index pages of the copies read at once: hides an object store's latency (tens of ms a
 * request) with at most 8 pages (≤ 2.5 MiB) in memory.
 */
const PAGES_IN_FLIGHT = 8;
/** Format 1 with `readData`: chunks read and opened in one worker task, as verify does. */
const CHECK_BATCH = 16;

/** A chunk a copy names that the destination does not hold intact. */
export interface BrokenChunk {
  problem: 'missing' | 'corrupt';
  message: string;
}

/** What {@link checkCopies} found: broken chunks (hex id), and index pages of the copies that do not read (page id → why). */
export interface CopyCheck {
  chunks: Map<string, BrokenChunk>;
  pages: Map<string, CofferError>;
}

/** Where a visited index page belongs: its copy, disk and number on the disk. */
export interface PagePlace {
  copy: Snapshot;
  disk: DiskRecord;
  page: number;
}

/**
 * Visits each distinct index page of the disks of `copies` once (a page shared by copies, or
 * repeated on a disk, is read once), read from `dst` and opened (rehashed), its bytes counted
 * as read from the destination. A page that does not read, or holds the wrong number of
 * entries, is reported to `onDamage` with why (once per page id) and not visited.
 */
export async function forEachCopyPage(
  context: { dst: Repository; counters: SyncCounters },
  copies: readonly Snapshot[],
  visit: (place: PagePlace, entries: readonly Buffer[]) => void,
  onDamage: (page: string, error: CofferError) => void,
): Promise<void> {
  const seen = new Set<string>();
  const places: PagePlace[] = [];
  for (const copy of copies) {
    for (const disk of copy.disks) {
      disk.pages.forEach((id, page) => {
        if (seen.has(id)) return;
        seen.add(id);
        places.push({ copy, disk, page });
      });
    }
  }
  await forEachLimited(places, PAGES_IN_FLIGHT, async (place) => {
    const { disk, page } = place;
    const id = disk.pages[page] as string;
    let entries: Buffer[];
    try {
      entries = await readPage(context.dst, id, context.counters, 'destination');
    } catch (error) {
      if (!isCofferError(error, 'E_MISSING_OBJECT') && !isCofferError(error, 'E_CORRUPT_OBJECT')) throw error;
      onDamage(id, error);
      return;
    }
    const expected = Math.min(disk.entriesPerPage, Math.ceil(disk.size / disk.blockSize) - page * disk.entriesPerPage);
    if (entries.length !== expected) {
      onDamage(id, new CofferError('E_CORRUPT_OBJECT', `index page ${id} has ${entries.length} entries, expected ${expected}`, { subject: { repository: context.dst.location, object: id } }));
      return;
    }
    visit(place, entries);
  });
}

/**
 * Checks that the destination holds every chunk the disks of `copies` (snapshots already in
 * `dst`) name, through what the sync's destination knows already:
 *
 * - format 1: one listing of `chunks/` (LooseDestination.listed; the sync's own when it has
 *   opened its destination to copy snapshots): no request per chunk;
 * - format 2: one listing of `packs/`; a chunk whose pack is not stored is looked up in the
 *   chunk index (the sync's, else loaded then: only then are the segments read), and counts
 *   as held when a segment places it in a stored pack (a prune repacked it, or an earlier sync
 *   healed it: reads fall back there).
 *
 * With `readData`, every chunk is read instead, opened with the destination's key and
 * rehashed (format 1: one GET a chunk; format 2: a ranged read per span of frames, and a
 * chunk whose place fails is found intact at another place the segments know, as
 * `verify --read-data` does, verify-packs.ts). The index pages of the copies are read in both
 * cases (distinct ones once). Memory: one entry per distinct chunk named, as verify.
 */
export async function checkCopies(
  context: { dst: Repository; destination: DestinationChunks | null; counters: SyncCounters },
  copies: readonly Snapshot[],
  options: { readData: boolean },
): Promise<CopyCheck> {
  const { counters } = context;
  const named = new Map<string, Buffer>(); // hex id → the entry a copy names it by
  const pages = new Map<string, CofferError>();
  await forEachCopyPage(
    context,
    copies,
    (_place, entries) => {
      for (const entry of entries) {
        if (isZeroEntry(entry)) continue;
        const hex = entry.toString('hex', 0, 32);
        if (!named.has(hex)) named.set(hex, entry);
      }
    },
    (page, error) => pages.set(page, error),
  );
  counters.chunksChecked += named.size;
  return { chunks: await checkChunksHeld(context, named, options), pages };
}

/**
 * Which of the chunks `named` (hex id → where the copy says it is: a disk page's entry, the
 * first place the destination's index segments give a file snapshot's chunk, or in format 1
 * the id; `undefined` in format 2: no segment names it, so it is missing) the destination does
 * not hold intact, through one listing of its data, or with `readData` each chunk read and
 * opened (see {@link checkCopies}, whose second half this is; heal-file-copies.ts asks it for
 * file snapshots' chunks).
 */
export async function checkChunksHeld(
  context: { dst: Repository; destination: DestinationChunks | null; counters: SyncCounters },
  named: ReadonlyMap<string, Buffer | undefined>,
  options: { readData: boolean },
): Promise<Map<string, BrokenChunk>> {
  const { dst, counters } = context;
  const chunks = new Map<string, BrokenChunk>();
  if (dst.config.version === 2) {
    const located = new Map<string, Buffer>();
    for (const [hex, entry] of named) {
      if (entry !== undefined) located.set(hex, entry);
      else chunks.set(hex, { problem: 'missing', message: `chunk ${hex} is missing: no index segment names it` });
    }
    const stored = await listStoredPacks(dst);
    if (options.readData) {
      const bad = await checkPackedChunks(dst, [...located.keys()], located, (_chunks, bytes) => (counters.bytesReadFromDestination += bytes), stored);
      for (const [hex, problem] of bad) chunks.set(hex, problem);
    } else {
      const packs = new Set(stored.map((pack) => pack.id));
      const packOf = (entry: Buffer) => entry.toString('hex', 32, 64);
      // The chunk index only when a pack is not stored: the sync's (loaded to copy), else loaded now.
      let index: Promise<ChunkIndex> | undefined;
      for (const [hex, entry] of located) {
        if (packs.has(packOf(entry))) continue;
        index ??= context.destination instanceof PackedDestination ? Promise.resolve(context.destination.index) : ChunkIndex.load(dst);
        const elsewhere = (await (await index).lookupAll(entry.subarray(0, 32))).some((place) => packs.has(packOf(place)));
        if (!elsewhere) chunks.set(hex, { problem: 'missing', message: `chunk ${hex} is missing: pack ${packOf(entry)} is not stored` });
      }
    }
  } else if (options.readData) {
    await readLooseChunks(context, [...named.keys()], chunks);
  } else {
    // The sync's listing (taken to copy), else one taken now.
    const listing = context.destination instanceof LooseDestination ? context.destination : await LooseDestination.open(dst, counters);
    for (const hex of named.keys()) if (!listing.listed(Buffer.from(hex, 'hex'))) chunks.set(hex, { problem: 'missing', message: `chunk ${hex} is missing` });
  }
  return chunks;
}

/** Format 1: reads each chunk and opens it (rehashed) on the codec threads, {@link CHECK_BATCH} to a task; what fails goes to `broken`. */
async function readLooseChunks(context: { dst: Repository; counters: SyncCounters }, ids: readonly string[], broken: Map<string, BrokenChunk>): Promise<void> {
  const { dst, counters } = context;
  const problem = (hex: string, error: unknown): void => {
    if (!isCofferError(error, 'E_MISSING_OBJECT') && !isCofferError(error, 'E_CORRUPT_OBJECT')) throw error;
    broken.set(hex, { problem: error.code === 'E_MISSING_OBJECT' ? 'missing' : 'corrupt', message: error.message });
  };
  const batches: string[][] = [];
  for (let i = 0; i < ids.length; i += CHECK_BATCH) batches.push(ids.slice(i, i + CHECK_BATCH));
  await forEachLimited(batches, dst.pool.threads * 2, async (batch) => {
    const fetched = await Promise.all(
      batch.map(async (hex) => {
        try {
          const blob = await dst.getChunkBlob(Buffer.from(hex, 'hex'));
          counters.bytesReadFromDestination += blob.length;
          return { hex, blob };
        } catch (error) {
          problem(hex, error);
          return null;
        }
      }),
    );
    const read = fetched.filter((r) => r !== null);
    const checked = await dst.pool.checkMany(read.map((r) => ({ blob: r.blob, kind: ObjectKind.chunk, name: chunkKey(r.hex), id: Buffer.from(r.hex, 'hex') })));
    checked.forEach((error, i) => {
      if (error !== null) problem((read[i] as { hex: string }).hex, error);
    });
  });
}
