import { forEachLimited } from '../concurrency/index.js';
import { CofferError, isCofferError } from '../errors/index.js';
import { isZeroEntry } from './format/index-page.js';
import { IdPrefixSet } from './id-prefix-set.js';
import { recordChunkDeletions } from './chunk-cache.js';
import { CHUNKS_PREFIX, idFromKey, INDEXES_PREFIX, noteKey, NOTES_PREFIX, TAGS_PREFIX, TREES_PREFIX } from './layout.js';
import { lockedUntil } from './lock/locked-until.js';
import { LASTING_NOTE_KINDS, listSnapshotNotes } from './snapshot-notes.js';
import { acquirePruneLease, type LeaseInfo } from './leases.js';
import type { Repository } from './repository.js';
import { listSnapshots } from './snapshots.js';
import { walkBlocks } from './walk.js';
import { walkFileTrees } from './file-trees.js';
import { planPacks, REPACK_DEFAULTS, type PackPlan } from './pack-plan.js';
import { dropUnneededRecords } from './pack-removals.js';
import { sweepPacks, type PackSweepReport } from './pack-sweep.js';
import { retireQuarantine } from './quarantine-retire.js';
import { mergeSmallSegments, type SegmentMergeReport } from './segment-merge.js';
import { keepSpaceReserve, releaseSpaceReserve, SPACE_RESERVE_BYTES } from './space-reserve.js';

/** Deletes `key`; false (and nothing thrown) when Object Lock refuses it. */
async function deleteUnlessLocked(repo: Repository, key: string): Promise<boolean> {
  try {
    await repo.backend.delete(key);
    return true;
  } catch (error) {
    if (isCofferError(error, 'E_OBJECT_LOCKED')) return false;
    throw error;
  }
}

/** What prune found and did. */
export interface PruneReport {
  dryRun: boolean;
  snapshots: number;
  chunksReferenced: number;
  /** Index pages and file trees (docs/repository-format.md §16). */
  indexPagesReferenced: number;
  /** Objects no snapshot references, removed (or, with dryRun, that would be). */
  chunksRemoved: number;
  indexPagesRemoved: number;
  /** Notes about snapshots that no longer exist. */
  notesRemoved: number;
  /** Tag records (`coffer tag`, snapshot-tags.ts) of snapshots that no longer exist. */
  tagRecordsRemoved: number;
  bytesFreed: number;
  /** Chunks and index pages kept (still referenced). */
  chunksKept: number;
  /** Their stored bytes; format 2: the bytes of the packs that stay (kept, and the repacks' new ones). */
  bytesKept: number;
  /** Leases of processes that died, removed. */
  expiredLeasesRemoved: number;
  /**
   * Chunks whose quarantine markers (damage.ts) were retired (or, with dryRun, would be): their
   * damaged copies are gone and a good copy is stored (or no snapshot uses them), so backups
   * deduplicate against them again instead of storing them once more each time
   * (quarantine-retire.ts).
   */
  quarantineRetired: number;
  /**
   * Garbage still under Object Lock retention, left in place (not counted as removed): a
   * later prune, once the retention ended, removes it. Always 0 without a lock.
   */
  stillLocked: number;
  /**
   * Temporary files of writes that never finished (a process killed mid-write), deleted once
   * stale (local storage: backend.ts `removeStaleTemporaries`). Absent when there were none.
   */
  temporaryFilesRemoved?: { files: number; bytes: number };
  /** Format 2: what happened to the packs (kept, deleted, repacked) and the index segments. */
  packs?: PackSweepReport;
  /** Format 2: small index segments merged (segment-merge.ts). */
  segments?: SegmentMergeReport;
  /**
   * Set when the disk was full or the space reserve could not be written (space-reserve.ts):
   * `released`, prune deleted the reserve and ran again in small steps (packs deleted first,
   * then repacked one pack's worth at a time; those that found no room were kept:
   * `packs.repacksPostponed`); `missing`, the disk was full and there was no reserve, and the
   * run in small steps found the room it needed anyway; `restored`, the reserve is in place at
   * the end (false: no room for it, and the next full disk may not be prunable); `written`, this
   * prune wrote it (back after `released`, or it was missing or cut short: then the disk need
   * not have been full, and only `written` is true). Never written by a dry run.
   */
  spaceReserve?: { released: boolean; missing: boolean; restored: boolean; written: boolean };
}

/** Progress of a prune. */
export interface PruneProgress {
  phase: 'waiting' | 'mark' | 'plan' | 'repack' | 'sweep';
  done: number;
  total: number;
  /** While waiting: what for. */
  holders?: LeaseInfo[];
}

/**
 * Removes every chunk and index page no snapshot references (after `forget`), and the notes
 * of snapshots that are gone. Safe while other hosts use the repository: a prune and a backup
 * never overlap (leases.ts — a running backup's chunks are referenced by no manifest yet), so
 * prune first waits for running backups (up to `waitMs`; new ones wait for it). The mark
 * keeps 8 bytes per referenced id (80 MB for 10 million chunks), never the ids themselves.
 * Refuses (`E_REPO_DAMAGED`) when a manifest or an index page cannot be read: what it
 * references is unknown, and deleting it could destroy data a repair would save. An
 * interrupted prune leaves a consistent repository (it only deletes garbage, one object at a
 * time) and is simply run again. Format 2: packs are deleted or repacked instead of chunk
 * objects (pack-plan.ts decides, pack-sweep.ts writes the new places before deleting the old
 * ones: docs/repository-format.md §19.7). On a disk full to the last block (E_NO_SPACE), a local
 * repository's space reserve is deleted and the prune runs again in small steps (packs deleted
 * first, then repacked one pack's worth at a time); the reserve is written back at the end
 * (space-reserve.ts, `report.spaceReserve`). Last, the quarantine markers of chunks whose
 * damaged copies are gone are retired (quarantine-retire.ts), so that backups deduplicate
 * against the healed chunks again.
 */
export async function pruneRepository(repo: Repository, options: PruneOptions = {}): Promise<PruneReport> {
  if (options.dryRun === true) return pruneOnce(repo, options, false);
  let report: PruneReport | undefined;
  let reserve: 'untouched' | 'released' | 'missing' = 'untouched';
  try {
    report = await pruneOnce(repo, options, false);
  } catch (error) {
    if (!isCofferError(error, 'E_NO_SPACE') || repo.backend.fillsUp !== true) throw error;
    // The reserve's room takes the few writes that come before the first delete (lease,
    // segments, pack-removal record); packs are then deleted before any is repacked, and
    // repacked one pack's worth at a time. Without a reserve (a repository made before it
    // existed, or a deleted one) the same run may still find the little room it needs.
    const released = await releaseSpaceReserve(repo.backend);
    reserve = released > 0 ? 'released' : 'missing';
    try {
      report = await pruneOnce(repo, options, true);
    } catch (again) {
      if (reserve === 'released') await keepSpaceReserve(repo.backend).catch(() => false);
      if (!isCofferError(again, 'E_NO_SPACE')) throw again;
      const why =
        reserve === 'missing'
          ? "this repository has no space reserve (it was made before Coffer kept one, or its file 'reserve' was deleted), so prune has no room of its own on this full disk"
          : released < SPACE_RESERVE_BYTES
            ? `the repository's space reserve held only ${released} bytes (it was cut short), too little for prune's own writes`
            : "even the room of the repository's space reserve was not enough for prune's own writes";
      throw new CofferError('E_NO_SPACE', `${again.message}; ${why}: free a few MiB on this disk and run prune again, which then writes a whole reserve for the next time`);
    }
  }
  const kept = await keepSpaceReserve(repo.backend);
  if (reserve !== 'untouched' || kept !== 'present') report.spaceReserve = { released: reserve === 'released', missing: reserve === 'missing', restored: kept !== 'no-room', written: kept === 'written' };
  return report;
}

/**
 * How old a temporary file of an unfinished write must be to be deleted (backend.ts,
 * `removeStaleTemporaries`). Prune holds its lease, so no backup or sync writes meanwhile; the
 * writers that take no lease (verify's records, notes, key changes) write small objects in
 * well under a second. An hour leaves even those alone; on a full disk, where the room is
 * needed now (a prune killed mid-repack leaves a whole pack), a minute.
 */
const STALE_TEMPORARY_MS = { normal: 3_600_000, lowSpace: 60_000 } as const;

async function removeStaleTemporaries(repo: Repository, report: PruneReport, lowSpace: boolean): Promise<void> {
  const removed = await repo.backend.removeStaleTemporaries?.(lowSpace ? STALE_TEMPORARY_MS.lowSpace : STALE_TEMPORARY_MS.normal);
  if (removed === undefined || removed.files === 0) return;
  const before = report.temporaryFilesRemoved ?? { files: 0, bytes: 0 };
  report.temporaryFilesRemoved = { files: before.files + removed.files, bytes: before.bytes + removed.bytes };
  report.bytesFreed += removed.bytes;
}

/** Options of {@link pruneRepository}. */
export interface PruneOptions {
  dryRun?: boolean;
  waitMs?: number;
  pollMs?: number;
  now?: () => Date;
  signal?: AbortSignal;
  onProgress?: (p: PruneProgress) => void;
  /** Format 2: the unused share of a pack's bytes from which it is repacked (0..1, default {@link REPACK_DEFAULTS}). */
  repackThreshold?: number;
}

/** One prune; `lowSpace` (a full disk): packs swept in small steps (pack-sweep.ts), no segment merged. */
async function pruneOnce(repo: Repository, options: PruneOptions, lowSpace: boolean): Promise<PruneReport> {
  const threshold = options.repackThreshold ?? REPACK_DEFAULTS.repackThreshold;
  if (!(threshold > 0 && threshold <= 1)) throw new CofferError('E_USAGE', `repack threshold ${threshold} must be above 0 and at most 1 (a share of a pack's bytes)`);
  const dryRun = options.dryRun === true;
  const held = dryRun
    ? undefined
    : await acquirePruneLease(repo, {
        ...(options.waitMs !== undefined ? { waitMs: options.waitMs } : {}),
        ...(options.pollMs !== undefined ? { pollMs: options.pollMs } : {}),
        ...(options.now ? { now: options.now } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        onWait: (holders) => options.onProgress?.({ phase: 'waiting', done: 0, total: 0, holders }),
      });
  try {
    const report: PruneReport = {
      dryRun, snapshots: 0, chunksReferenced: 0, indexPagesReferenced: 0, chunksRemoved: 0, indexPagesRemoved: 0,
      notesRemoved: 0, tagRecordsRemoved: 0, bytesFreed: 0, chunksKept: 0, bytesKept: 0, expiredLeasesRemoved: held?.expiredRemoved ?? 0, quarantineRetired: 0, stillLocked: 0,
    };
    // Mark.
    const damaged: string[] = [];
    const snapshots = await listSnapshots(repo, { onDamaged: (id, error) => damaged.push(`manifest ${id.slice(0, 8)}: ${error.message}`) });
    const chunks = new IdPrefixSet();
    const pages = new IdPrefixSet();
    /** Format 2: the packs the snapshots' located entries name. */
    const hinted = new Set<string>();
    for (const snapshot of snapshots) for (const disk of snapshot.disks) for (const page of disk.pages) pages.add(page);
    let marked = 0;
    await walkBlocks(
      repo,
      snapshots,
      (visit) => {
        if (isZeroEntry(visit.entry)) return;
        chunks.add(visit.entry);
        if (visit.located !== undefined) hinted.add(visit.located.subarray(32, 64).toString('hex'));
      },
      (damage) => damaged.push(`index page ${damage.page.slice(0, 16)} of snapshot ${damage.snapshot.id.slice(0, 8)}: ${damage.error.message}`),
      { distinctPages: true }, // a page names the same chunks wherever it is used
    );
    // File snapshots: their trees are kept with the index pages (format 1: `trees/` objects)
    // or as chunks (format 2: trees are chunks in packs of trees), their files' chunks with the rest.
    const treesInPacks = repo.config.version === 2;
    await walkFileTrees(
      repo,
      snapshots,
      {
        tree: (id) => {
          pages.add(id);
          if (treesInPacks) chunks.add(id);
        },
        chunk: (visit) => chunks.add(visit.id),
      },
      (damage) => damaged.push(`file tree ${damage.tree.slice(0, 16)} (${damage.path}) of snapshot ${damage.snapshot.id.slice(0, 8)}: ${damage.error.message}`),
      { distinct: true },
    );
    options.onProgress?.({ phase: 'mark', done: ++marked, total: 1 });
    if (damaged.length > 0) {
      throw new CofferError('E_REPO_DAMAGED', `prune refuses to run: what these reference is unknown, so nothing can be deleted safely: ${damaged.slice(0, 3).join('; ')}${damaged.length > 3 ? ` (and ${damaged.length - 3} more)` : ''}; run 'coffer verify' and forget or repair the damaged snapshots first`);
    }
    chunks.seal();
    pages.seal();
    report.snapshots = snapshots.length;
    report.chunksReferenced = chunks.size;
    report.indexPagesReferenced = pages.size;

    // Format 2: packs first (their new places are written before anything is deleted).
    let plan: PackPlan | undefined;
    if (repo.config.version === 2) {
      plan = await planPacks(repo, chunks, hinted, { threshold, onPack: (done) => options.onProgress?.({ phase: 'plan', done, total: 0 }) });
      // A pack's unfinished write (a process killed while writing it) is room a full disk needs before the sweep.
      if (!dryRun) await removeStaleTemporaries(repo, report, lowSpace);
      report.packs = await sweepPacks(repo, plan, chunks, {
        dryRun,
        lowSpace,
        ...(options.signal ? { signal: options.signal } : {}),
        onProgress: (phase, done, total) => options.onProgress?.({ phase, done, total }),
      });
      report.bytesFreed += report.packs.bytesFreed;
      report.stillLocked += plan.locked.length;
      // Then the small segments (backups' and the sweep's) merged, under the same lease.
      if (!lowSpace) report.segments = await mergeSmallSegments(repo, { dryRun, signal: options.signal });
      report.chunksKept = chunks.size;
      // What stays stored: the packs kept as they are and the repacks' new packs (estimated in a dry run).
      report.bytesKept = plan.keptBytes + report.packs.packBytesWritten;
    }

    // Sweep: list, then delete what nothing references.
    const garbage: { key: string; size: number; kind: 'chunk' | 'page' | 'note' | 'tags' }[] = [];
    for await (const entry of repo.backend.list(CHUNKS_PREFIX)) {
      const id = idFromKey(entry.key);
      if (id === null) continue;
      if (chunks.has(id)) {
        report.chunksKept++;
        report.bytesKept += entry.size;
      } else garbage.push({ key: entry.key, size: entry.size, kind: 'chunk' });
    }
    for (const prefix of [INDEXES_PREFIX, TREES_PREFIX]) {
      for await (const entry of repo.backend.list(prefix)) {
        const id = idFromKey(entry.key);
        if (id !== null && !pages.has(id)) garbage.push({ key: entry.key, size: entry.size, kind: 'page' });
      }
    }
    // Notes of snapshots that are gone, except the lasting kinds (the tape catalog); an orphan
    // note that cannot be read goes too.
    const alive = new Set(snapshots.map((s) => s.id));
    const orphans = new Map<string, number>();
    for await (const entry of repo.backend.list(NOTES_PREFIX)) {
      const snapshot = /^notes\/([0-9a-f]{64})\./.exec(entry.key)?.[1];
      if (snapshot !== undefined && !alive.has(snapshot)) orphans.set(entry.key, entry.size);
    }
    if (orphans.size > 0) {
      const lasting = new Set<string>();
      for (const note of await listSnapshotNotes(repo, { onDamaged: () => undefined })) {
        if (LASTING_NOTE_KINDS.has(note.kind)) lasting.add(noteKey(note.snapshot, note.id));
      }
      for (const [key, size] of orphans) if (!lasting.has(key)) garbage.push({ key, size, kind: 'note' });
    }
    // Tag records of snapshots that are gone (a forget that stopped between the manifest and them), unread.
    for await (const entry of repo.backend.list(TAGS_PREFIX)) {
      const snapshot = /^tags\/([0-9a-f]{64})\./.exec(entry.key)?.[1];
      if (snapshot !== undefined && !alive.has(snapshot)) garbage.push({ key: entry.key, size: entry.size, kind: 'tags' });
    }
    // Before the first delete: every chunk cache built until now is stale (chunk-cache.ts).
    if (!dryRun && garbage.some((object) => object.kind === 'chunk')) await recordChunkDeletions(repo.backend);
    let swept = 0;
    /** Chunk objects (hex) deleted, or with dryRun that would be. */
    const removedChunks = new Set<string>();
    // With Object Lock, garbage whose retention has not ended is left for a later prune: its
    // retention is read first (never a delete known to fail), and a delete refused anyway
    // (a clock behind the store's) counts the same.
    const stillLocked = async (key: string): Promise<boolean> => (await lockedUntil(repo, key)) !== null;
    await forEachLimited(garbage, 8, async (object) => {
      if (options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'prune interrupted (run it again: what is left is only garbage)');
      const kept = (await stillLocked(object.key)) || (!dryRun && !(await deleteUnlessLocked(repo, object.key)));
      options.onProgress?.({ phase: 'sweep', done: ++swept, total: garbage.length });
      if (kept) {
        report.stillLocked++;
        return;
      }
      if (object.kind === 'chunk') {
        report.chunksRemoved++;
        removedChunks.add(idFromKey(object.key) as string);
      } else if (object.kind === 'page') report.indexPagesRemoved++;
      else if (object.kind === 'note') report.notesRemoved++;
      else report.tagRecordsRemoved++;
      report.bytesFreed += object.size;
    });
    // Format 2: the pack-removal records no kept snapshot's next incremental needs (§19.11).
    if (!dryRun && repo.config.version === 2) await dropUnneededRecords(repo, snapshots.map((s) => s.prunedThrough));
    if (!dryRun) await removeStaleTemporaries(repo, report, lowSpace);
    // Last, once every damaged copy this prune drops is gone (it syncs before its deletes): the
    // quarantine markers whose job is done.
    if (options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'prune interrupted (run it again: what is left is only garbage)');
    const retirement = await retireQuarantine(repo, chunks, { dryRun, removedChunks, ...(plan !== undefined ? { plan } : {}) });
    report.quarantineRetired = retirement.retired;
    report.stillLocked += retirement.stillLocked;
    if (!dryRun) await repo.backend.sync();
    return report;
  } finally {
    await held?.lease.release().catch(() => {});
  }
}
