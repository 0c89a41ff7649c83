/**
 * The `prune` kind: removes the chunks (format 2: packs, repacking those mostly unused), index pages and notes no snapshot references (the
 * library's `pruneRepository`, as `coffer prune`): it waits for running backups' leases up to
 * `waitMs`, and its own lease keeps backups from starting meanwhile, so a backup never loses a
 * chunk it counted on. A cancelled prune stops between deletions; what it left is garbage the
 * next prune removes.
 */
import { pruneRepository, type PruneReport, type Repository } from '../../../repo/index.js';
import type { PruneSpec } from './kind-specs.js';
import { withTaskRepository } from './open-repository.js';
import type { KindContext, TaskReport } from './task-report.js';

export async function runPruneTask(spec: PruneSpec, context: KindContext): Promise<TaskReport> {
  return withTaskRepository(spec.repository, (repo) => pruneWithReport(repo, spec, context));
}

/** Prunes an open repository and describes it (also the end of a `forget` with `prune`). */
export async function pruneWithReport(repo: Repository, spec: Pick<PruneSpec, 'dryRun' | 'waitMs'>, context: KindContext): Promise<TaskReport> {
  const started = Date.now();
  let saidWaiting = false;
  const r: PruneReport = await pruneRepository(repo, {
    dryRun: spec.dryRun,
    waitMs: spec.waitMs,
    signal: context.signal,
    onProgress: (p) => {
      if (p.phase === 'waiting' && !saidWaiting) {
        saidWaiting = true;
        context.log(`waiting for running backups to end: ${(p.holders ?? []).map((h) => `${h.kind} on ${h.host} (pid ${h.pid})`).join('; ')}`);
      } else if (p.phase === 'sweep') context.progress(p.done, p.total);
    },
  });
  const verb = r.dryRun ? 'would remove' : 'removed';
  // Format 2: packs deleted and repacked instead of chunk objects.
  const what = r.packs === undefined
    ? `${r.chunksRemoved} chunk(s), ${r.indexPagesRemoved} index page(s)`
    : `${r.packs.packsDeleted} pack(s), repacked ${r.packs.packsRepacked} (${r.packs.bytesRewritten} bytes rewritten), ${r.indexPagesRemoved} index page(s)`;
  return {
    summary: `${verb} ${what} and ${r.notesRemoved} note(s) no snapshot uses: ${r.bytesFreed} bytes ${r.dryRun ? 'would be ' : ''}freed; kept ${r.chunksKept} chunk(s)`,
    warnings: [
      ...(r.stillLocked > 0 ? [`${r.stillLocked} unused object(s) are still under Object Lock: a later prune removes them`] : []),
      ...(r.packs?.unreadable ?? []).map((u) => `kept ${u.pack} as it is: ${u.message} (run verify --read-data)`),
    ],
    figures: {
      snapshots: r.snapshots, chunksRemoved: r.chunksRemoved, indexPagesRemoved: r.indexPagesRemoved, notesRemoved: r.notesRemoved, tagRecordsRemoved: r.tagRecordsRemoved,
      bytesFreed: r.bytesFreed, chunksKept: r.chunksKept, bytesKept: r.bytesKept, expiredLeasesRemoved: r.expiredLeasesRemoved, quarantineRetired: r.quarantineRetired, durationMs: Date.now() - started,
      ...(r.packs === undefined ? {} : { packsDeleted: r.packs.packsDeleted, packsRepacked: r.packs.packsRepacked, packsKept: r.packs.packsKept, packsWritten: r.packs.packsWritten, bytesRewritten: r.packs.bytesRewritten, damagedCopiesDropped: r.packs.damagedCopiesDropped }),
    },
    detail: { dryRun: r.dryRun },
  };
}
