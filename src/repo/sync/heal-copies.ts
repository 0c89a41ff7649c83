import { forEachLimited } from '../../concurrency/index.js';
import { CofferError, isCofferError, type ErrorCode } from '../../errors/index.js';
import { isZeroEntry } from '../format/index-page.js';
import type { Repository } from '../repository.js';
import type { Snapshot } from '../snapshots.js';
import type { ChunkTransfer } from './chunk-transfer.js';
import { checkCopies, forEachCopyPage } from './copy-check.js';
import { readPage } from './copy-snapshot.js';
import { healFileCopies } from './heal-file-copies.js';
import type { SyncCounters } from './sync-report.js';

/** Chunks sent again at once (as copy-snapshot.ts translates a page's chunks). */
const CHUNKS_IN_FLIGHT = 16;
/** Source index pages kept decoded while healing: the broken chunks are taken in page order. */
const SOURCE_PAGES_KEPT = 8;
/** Codes that leave one copy broken (its source is damaged too, or what was sent did not read back) while the others go on. */
const COPY_FAILURES: ErrorCode[] = ['E_CORRUPT_OBJECT', 'E_MISSING_OBJECT', 'E_VERIFY_FAILED'];

/** A source snapshot and its copy already in the destination. */
export interface PresentPair {
  source: Snapshot;
  copy: Snapshot;
}

/**
 * What healing found for one pair: `healed` chunks and `treesHealed` file trees (a file
 * snapshot's) sent again (0 and 0: the copy was whole), or why it stays broken.
 */
export type HealOutcome = { healed: number; treesHealed: number } | { error: CofferError };

/** What healing needs: both repositories, and the sync's transfer into the destination. */
export interface HealContext {
  src: Repository;
  dst: Repository;
  /** The sync's transfer when it has opened it to copy snapshots (its listing or chunk index is then reused), else null. */
  opened: ChunkTransfer | null;
  /** Opens the transfer (or answers the one opened): called only when something is to be sent again. */
  transfer: () => Promise<ChunkTransfer>;
  counters: SyncCounters;
}

/** Where a broken chunk is named: a pair whose copy names it, the disk, and the block. */
interface BrokenPlace {
  pair: PresentPair;
  disk: string;
  block: number;
}

/**
 * Makes the copies already in the destination whole again: the disk snapshots' (below), then
 * the file snapshots' (heal-file-copies.ts: their trees walked beside the source's, a broken
 * chunk sent again, a broken tree translated again from the source and stored again). A pair
 * whose kinds differ (none does) is left as it is.
 */
export async function healCopies(context: HealContext, pairs: readonly PresentPair[], options: { readData: boolean }): Promise<Map<PresentPair, HealOutcome>> {
  const outcomes = new Map<PresentPair, HealOutcome>(pairs.map((pair) => [pair, { healed: 0, treesHealed: 0 }]));
  const disks = pairs.filter((pair) => pair.source.files === undefined && pair.copy.files === undefined);
  const files = pairs.filter((pair) => pair.source.files !== undefined && pair.copy.files !== undefined);
  for (const [pair, outcome] of await healDiskCopies(context, disks, options)) outcomes.set(pair, outcome);
  for (const [pair, outcome] of await healFileCopies(context, files, options)) outcomes.set(pair, outcome);
  return outcomes;
}

/**
 * Makes the disk snapshots' copies already in the destination whole again. Their chunks are
 * checked (copy-check.ts: against one listing of the destination's data, or, with
 * `readData`, read and opened); a chunk missing or damaged there is read from the source at
 * the same place (the copy's index pages line up with the source's: page for page, block for
 * block), checked to be the chunk the copy names (its destination id), and stored again
 * through the sync's transfer (chunk-transfer.ts `resend`): format 1 under its key, format 2 in
 * a new pack and index segment, which reads and verify fall back to from the copy's old place,
 * as they do after a backup stored a damaged chunk again (damage.ts). Nothing is deleted, and
 * nothing locked is overwritten in place (format 1 under Object Lock: a new version).
 *
 * Cost when nothing is broken: the copies' index pages (each distinct page once) and the
 * listing; the source is not read, and the transfer is not opened (a format 2 destination's
 * chunk index is not loaded) unless the sync copies snapshots too. Only when something is broken are the copies' pages read
 * a second time (to place it), and the source's pages that hold it.
 *
 * A copy whose index page does not read cannot be healed here (the page names the
 * destination's ids, which only a full copy of the snapshot would recompute): it fails, saying
 * to forget it in the destination and sync again.
 */
async function healDiskCopies(context: HealContext, disks: readonly PresentPair[], options: { readData: boolean }): Promise<Map<PresentPair, HealOutcome>> {
  const { src, dst, counters } = context;
  const outcomes = new Map<PresentPair, HealOutcome>();
  const pairOf = new Map<string, PresentPair>();
  for (const pair of disks) if (!pairOf.has(pair.copy.id)) pairOf.set(pair.copy.id, pair);
  const copies = [...pairOf.values()].map((pair) => pair.copy);
  if (copies.length === 0) return outcomes;
  const check = await checkCopies({ dst, destination: context.opened?.destination ?? null, counters }, copies, options);
  if (check.chunks.size === 0 && check.pages.size === 0) return outcomes;
  const transfer = await context.transfer();

  // Second read of the copies' pages, only now that something is broken: which pages name it,
  // and one place where it is named (whose source block holds it).
  const inPage = new Map<string, string[]>();
  const places = new Map<string, BrokenPlace>();
  if (check.chunks.size > 0) {
    await forEachCopyPage(
      { dst, counters },
      copies,
      (place, entries) => {
        const page = place.disk.pages[place.page] as string;
        entries.forEach((entry, i) => {
          if (isZeroEntry(entry)) return;
          const hex = entry.toString('hex', 0, 32);
          if (!check.chunks.has(hex)) return;
          const named = inPage.get(page);
          if (named === undefined) inPage.set(page, [hex]);
          else if (!named.includes(hex)) named.push(hex);
          if (!places.has(hex)) places.set(hex, { pair: pairOf.get(place.copy.id) as PresentPair, disk: place.disk.name, block: place.page * place.disk.entriesPerPage + i });
        });
      },
      () => undefined, // reported by the check already
    );
  }

  const failures = new Map<string, CofferError>(); // hex id → why it was not healed
  const failed = (hex: string, error: unknown): void => {
    if (!isCofferError(error) || !COPY_FAILURES.includes(error.code)) throw error;
    failures.set(hex, error);
  };
  const sourcePages = new SourcePages(src, counters);
  const ordered = [...places].sort(([, a], [, b]) => a.pair.source.id.localeCompare(b.pair.source.id) || a.disk.localeCompare(b.disk) || a.block - b.block);
  const arriving: Promise<void>[] = [];
  await forEachLimited(ordered, CHUNKS_IN_FLIGHT, async ([hex, place]) => {
    try {
      const stored = await transfer.resend(await sourcePages.entryAt(place), Buffer.from(hex, 'hex'));
      arriving.push(stored.entry.then(() => undefined, (error: unknown) => failed(hex, error)));
    } catch (error) {
      failed(hex, error);
    }
  });
  await transfer.end(); // format 2: the last pack and its index segment
  await Promise.all(arriving);
  counters.chunksHealed += places.size - failures.size;

  for (const pair of disks) {
    const pages = pair.copy.disks.flatMap((disk) => disk.pages);
    const damagedPage = pages.find((page) => check.pages.has(page));
    if (damagedPage !== undefined) {
      outcomes.set(pair, { error: pageNotRebuilt(dst, pair.copy, damagedPage, check.pages.get(damagedPage) as CofferError) });
      continue;
    }
    const named = new Set(pages.flatMap((page) => inPage.get(page) ?? []));
    const failure = [...named].map((hex) => failures.get(hex)).find((error) => error !== undefined);
    outcomes.set(pair, failure !== undefined ? { error: failure } : { healed: named.size, treesHealed: 0 });
  }
  return outcomes;
}

/** The error of a copy whose index page does not read: what to do about it. */
function pageNotRebuilt(dst: Repository, copy: Snapshot, page: string, error: CofferError): CofferError {
  const state = error.code === 'E_MISSING_OBJECT' ? 'missing' : 'damaged';
  return new CofferError(
    error.code,
    `index page ${page} of the copy ${copy.id} in ${dst.location} is ${state} (${error.message}); sync does not rebuild a copy's index pages: forget the copy there ('coffer forget -r ${dst.location} ${copy.id}') and sync again to copy the snapshot anew`,
    { subject: { repository: dst.location, object: page }, cause: error },
  );
}

/** The source's index pages, read as healing needs them (the last few kept decoded). */
class SourcePages {
  private readonly kept = new Map<string, Promise<Buffer[]>>();

  constructor(
    private readonly src: Repository,
    private readonly counters: SyncCounters,
  ) {}

  /** The source's entry at `place`: the same disk and block of the copy's source snapshot. */
  async entryAt(place: BrokenPlace): Promise<Buffer> {
    const { source, copy } = place.pair;
    const disk = source.disks.find((d) => d.name === place.disk);
    const copied = copy.disks.find((d) => d.name === place.disk);
    const page = disk === undefined ? undefined : disk.pages[Math.floor(place.block / disk.entriesPerPage)];
    if (disk === undefined || copied === undefined || page === undefined || disk.entriesPerPage !== copied.entriesPerPage || disk.pages.length !== copied.pages.length) {
      throw new CofferError('E_VERIFY_FAILED', `the copy ${copy.id} does not line up with the source snapshot ${source.id} (disk ${place.disk}): its chunks cannot be taken from there`, {
        subject: { repository: this.src.location, object: source.id },
      });
    }
    let entries = this.kept.get(page);
    if (entries === undefined) {
      entries = readPage(this.src, page, this.counters, 'source');
      entries.catch(() => undefined); // awaited below
      this.kept.set(page, entries);
      if (this.kept.size > SOURCE_PAGES_KEPT) this.kept.delete(this.kept.keys().next().value as string);
    }
    const entry = (await entries)[place.block % disk.entriesPerPage];
    if (entry === undefined || isZeroEntry(entry)) {
      throw new CofferError('E_VERIFY_FAILED', `block ${place.block} of disk ${place.disk} of the source snapshot ${source.id} holds no chunk where its copy ${copy.id} names one`, {
        subject: { repository: this.src.location, object: source.id },
      });
    }
    return entry;
  }
}
