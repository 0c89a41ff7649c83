import { CofferError, isCofferError, type ErrorCode } from '../../errors/index.js';
import { absoluteLocation, sameLocation } from '../absolute-location.js';
import { acquireBackupLease, type LeaseInfo } from '../leases.js';
import type { Repository } from '../repository.js';
import { listSnapshots, saveSnapshot, type Snapshot } from '../snapshots.js';
import { carryTags, type CarriedTags } from './carry-tags.js';
import { ChunkTransfer, shareKeys } from './chunk-transfer.js';
import { copyFileSnapshotData } from './copy-file-trees.js';
import { copySnapshotData, type CopiedPair } from './copy-snapshot.js';
import { healCopies, type HealOutcome, type PresentPair } from './heal-copies.js';
import { emptyCounters, type SyncedSnapshot, type SyncProgress, type SyncReport } from './sync-report.js';
import { copiesHeld, originsOf, recordSyncedFrom, syncedFromNotes } from './synced-from.js';

/** What to copy and how to report. */
export interface SyncOptions {
  /** Only the snapshots of this VM. */
  vm?: string | undefined;
  /** With `vm`: a VM the source has no snapshot of is an error (E_SNAPSHOT_NOT_FOUND, a typo), not an empty sync. */
  vmMustExist?: boolean | undefined;
  /** Only the snapshots captured at or after this instant. */
  since?: Date | undefined;
  /**
   * Copies already in the destination: check that every chunk they name is there (their index
   * pages, a file snapshot's trees, and one listing, heal-copies.ts), and send again from the
   * source those that are not (and a file snapshot's trees that do not read).
   * Off by default: it reads every copy's index pages (a file snapshot's trees) on each sync.
   */
  check?: boolean | undefined;
  /** With `check` (implied): also read and open every such chunk, and send again those damaged. */
  readData?: boolean | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ((progress: SyncProgress) => void) | undefined;
  /** Told once when a prune of the destination runs and the sync waits for it to end. */
  onWait?: ((holders: LeaseInfo[]) => void) | undefined;
  /** How long to wait for a prune of the destination (default 30 minutes). */
  leaseWaitMs?: number | undefined;
  now?: (() => Date) | undefined;
}

/** Codes that make one snapshot fail (its source is damaged, or its copy did not arrive intact) while the others go on. */
const SNAPSHOT_FAILURES: ErrorCode[] = ['E_CORRUPT_OBJECT', 'E_MISSING_OBJECT', 'E_VERIFY_FAILED', 'E_UNSUPPORTED_FORMAT'];

/**
 * Copies snapshots from `src` to `dst`, oldest first, sending only the chunks `dst` lacks.
 *
 * Per snapshot: every chunk and index page (a file snapshot: every chunk and file tree,
 * rewritten with the destination's ids, copy-file-trees.ts) is stored in the destination and read back, then
 * the manifest is written (last, like a backup), then a `synced-from` note (synced-from.ts)
 * that tells later syncs it is there (and a sync back, that the source's snapshot is a copy of
 * one the destination holds: nothing is copied back), and, when the source's tags were set
 * with `coffer tag`, a tag record (carry-tags.ts; copies already there get theirs too). A sync that is interrupted leaves no snapshot half
 * copied; run again, it finds the chunks it sent present and sends them no more.
 *
 * Between repositories with different keys a chunk's destination id is known only from its
 * plaintext, so a chunk is read from the source unless its block is unchanged since an
 * earlier snapshot of the same VM already copied (then the copy's entry is reused, unread;
 * incremental-forever syncs read only what changed). Between repositories sharing their keys
 * (see {@link shareKeys}), ids are the same and only what the destination lacks is read.
 *
 * Either side may be of format 1 or 2 (v1 → v2 is how a repository moves to format 2):
 * chunks are read from chunk objects or packs (source-chunks.ts) and stored as chunk objects
 * or re-packed into new packs with their index segments (packed-destination.ts); between two
 * format 2 repositories sharing their keys, a pack whose every chunk is needed is copied
 * whole (whole-packs.ts). File snapshots too: their trees and chunks, found by id through
 * a format 2 source's segments, go into a format 2 destination's packs (trees in packs of
 * their own), the segments written before the manifest (copy-file-trees.ts).
 *
 * Snapshots the destination holds already are not copied again. With `check` their copies are
 * made whole first (heal-copies.ts): a chunk they name that is missing there (one listing), or
 * with `readData` damaged, is sent again from the source, and a file snapshot's tree that does
 * not read is translated again from the source's (heal-file-copies.ts); such a copy is
 * reported `healed`.
 *
 * Holds a backup lease on the destination meanwhile (a prune there waits, and the sync waits
 * for a running prune). Never deletes anything in the destination but its own lease.
 * Throws `E_INTERRUPTED` on abort; damage in one source snapshot fails that snapshot only.
 */
export async function syncSnapshots(src: Repository, dst: Repository, options: SyncOptions = {}): Promise<SyncReport> {
  if (src.config.id === dst.config.id && (await sameLocation(src.location, dst.location))) {
    throw new CofferError('E_USAGE', `the source and the destination are the same repository (${src.location})`);
  }
  const now = options.now ?? (() => new Date());
  const sameKeys = shareKeys(src, dst);
  const counters = emptyCounters();
  const results: SyncedSnapshot[] = [];
  const all = await listSnapshots(src, {
    onDamaged: (id, error) => results.push({ source: id, vm: '?', time: '', status: 'failed', destination: null, error: { code: error.code, message: error.message } }),
  });
  const selected = all.filter((s) => (options.vm === undefined || s.vm === options.vm) && (options.since === undefined || Date.parse(s.time) >= options.since.getTime()));
  if (options.vm !== undefined && options.vmMustExist === true && !all.some((s) => s.vm === options.vm)) {
    throw new CofferError('E_SNAPSHOT_NOT_FOUND', `no snapshot of VM ${options.vm} in ${src.location}`, { subject: { repository: src.location } });
  }

  const lease = await acquireBackupLease(dst, {
    now,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.leaseWaitMs !== undefined ? { waitMs: options.leaseWaitMs } : {}),
    ...(options.onWait ? { onWait: options.onWait } : {}),
  });
  let transfer: ChunkTransfer | null = null;
  try {
    const copies = new Map<string, Snapshot>(); // source id → its copy in the destination
    const existing = new Map((await listSnapshots(dst, { onDamaged: () => undefined })).map((s) => [s.id, s]));
    const sourceNotes = await syncedFromNotes(src);
    const held = await copiesHeld({ repository: src.config.id, notes: sourceNotes }, dst, new Set(all.map((s) => s.id)), new Set(existing.keys()));
    for (const [source, copy] of held) copies.set(source, existing.get(copy) as Snapshot);
    if (sameKeys) for (const s of all) if (existing.has(s.id)) copies.set(s.id, existing.get(s.id) as Snapshot);

    const todo = selected.filter((s) => !copies.has(s.id));
    const present = selected.flatMap((source) => {
      const copy = copies.get(source.id);
      return copy === undefined ? [] : [{ source, copy }];
    });
    const open = () => ChunkTransfer.open(src, dst, { sameKeys, counters, signal: options.signal });
    transfer = todo.length === 0 ? null : await open();
    // With `check`, the copies already there are checked, and healed from the source, before new ones are copied.
    const checked = options.check === true || options.readData === true;
    const outcomes = !checked
      ? new Map<PresentPair, HealOutcome>()
      : await healCopies({ src, dst, counters, opened: transfer, transfer: async () => (transfer ??= await open()) }, present, { readData: options.readData === true });
    if (counters.chunksHealed + counters.treesHealed > 0) await lease.confirm(); // no prune presumed this sync dead meanwhile
    for (const pair of present) {
      const { source: s, copy } = pair;
      const outcome = outcomes.get(pair) ?? { healed: 0, treesHealed: 0 };
      const carried = await carryTags(dst, s, copy);
      const base = { source: s.id, vm: s.vm, time: s.time, destination: copy.id, ...tagsReport(carried) };
      if ('error' in outcome) results.push({ ...base, status: 'failed', error: { code: outcome.error.code, message: outcome.error.message } });
      else if (outcome.treesHealed > 0) results.push({ ...base, status: 'healed', chunksHealed: outcome.healed, treesHealed: outcome.treesHealed });
      else if (outcome.healed > 0) results.push({ ...base, status: 'healed', chunksHealed: outcome.healed });
      else results.push({ ...base, status: 'present' });
    }

    for (const [index, snapshot] of todo.entries()) {
      const total = snapshot.files !== undefined ? snapshot.stats.bytesLogical : snapshot.disks.reduce((sum, disk) => sum + disk.size, 0);
      const progress = (done: number) => options.onProgress?.({ snapshot: snapshot.id, vm: snapshot.vm, index: index + 1, snapshots: todo.length, done, total, counters });
      progress(0);
      try {
        if (transfer === null) throw new Error('no transfer for snapshots to copy');
        const parent = snapshot.parent === null ? null : (copies.get(snapshot.parent)?.id ?? null);
        const copyData = snapshot.files !== undefined ? copyFileSnapshotData : copySnapshotData;
        const manifest = await copyData(
          { src, dst, transfer, counters, signal: options.signal, onPage: progress },
          snapshot,
          previousPair(snapshot, all, copies),
          parent,
        );
        await lease.confirm(); // no prune presumed this sync dead and swept what it sent
        const copy = await saveSnapshot(dst, manifest);
        const origins = originsOf(sourceNotes, snapshot.id);
        await recordSyncedFrom(dst, copy.id, { repository: src.config.id, snapshot: snapshot.id, location: absoluteLocation(src.location), ...(origins.length > 0 ? { origins } : {}) }, now());
        const carried = await carryTags(dst, snapshot, copy);
        copies.set(snapshot.id, copy);
        results.push({ source: snapshot.id, vm: snapshot.vm, time: snapshot.time, status: 'copied', destination: copy.id, ...tagsReport(carried) });
      } catch (error) {
        if (!isCofferError(error) || !SNAPSHOT_FAILURES.includes(error.code)) throw error;
        results.push({ source: snapshot.id, vm: snapshot.vm, time: snapshot.time, status: 'failed', destination: null, error: { code: error.code, message: error.message } });
      }
      progress(total);
    }
  } catch (error) {
    // Interrupted: what was taken is stored and named (format 2: its pack and segment), so a
    // new run finds it; any other failure drops what is not stored yet.
    if (isCofferError(error, 'E_INTERRUPTED')) await transfer?.end().catch(() => undefined);
    else await transfer?.abandon(error);
    throw error;
  } finally {
    // On an append-only destination this delete may be refused: the lease then expires.
    await lease.release().catch(() => undefined);
  }
  const order = new Map(all.map((s, i) => [s.id, i]));
  results.sort((a, b) => (order.get(a.source) ?? -1) - (order.get(b.source) ?? -1));
  const count = (status: SyncedSnapshot['status']) => results.filter((r) => r.status === status).length;
  return { source: src.location, destination: dst.location, sameKeys, snapshots: results, copied: count('copied'), present: count('present'), healed: count('healed'), failed: count('failed'), skipped: count('skipped'), ...counters };
}

/**
 * The earlier snapshot of the same VM already in the destination whose blocks are most
 * likely unchanged: the parent when copied, else the newest copied one not newer than it.
 */
function previousPair(snapshot: Snapshot, all: readonly Snapshot[], copies: ReadonlyMap<string, Snapshot>): CopiedPair | null {
  const pair = (source: Snapshot | undefined): CopiedPair | null => {
    const copy = source === undefined ? undefined : copies.get(source.id);
    return source === undefined || copy === undefined ? null : { source, copy };
  };
  const parent = pair(all.find((s) => s.id === snapshot.parent));
  if (parent !== null) return parent;
  const copied = all.filter((s) => s.vm === snapshot.vm && s.id !== snapshot.id && copies.has(s.id));
  return pair(copied.filter((s) => s.time <= snapshot.time).at(-1) ?? copied.at(-1));
}

/** What a snapshot's report says of the tags carried to its copy (carry-tags.ts). */
function tagsReport(carried: CarriedTags): Pick<SyncedSnapshot, 'tagsCarried' | 'tagsRefused'> {
  if (carried === null) return {};
  return 'carried' in carried ? { tagsCarried: carried.carried } : { tagsRefused: carried.refused };
}
