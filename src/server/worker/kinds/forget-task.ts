/**
 * The `forget` kind: applies a retention policy to every VM of a repository (or one) and
 * removes the snapshots it does not keep, as `coffer forget --keep-…` does: protected
 * snapshots and those under Object Lock stay (and are said so); then prunes when asked.
 * Removing a snapshot deletes only its manifest (atomic): a cancelled forget leaves every
 * snapshot either whole or gone.
 */
import { CofferError, isCofferError } from '../../../errors/index.js';
import { applyRetention, deleteSnapshot, listRetentionCandidates } from '../../../repo/index.js';
import type { ForgetSpec } from './kind-specs.js';
import { withTaskRepository } from './open-repository.js';
import { pruneWithReport } from './prune-task.js';
import type { KindContext, TaskReport } from './task-report.js';

export async function runForgetTask(spec: ForgetSpec, context: KindContext): Promise<TaskReport> {
  return withTaskRepository(spec.repository, async (repo) => {
    const warnings: string[] = [];
    const snapshots = await listRetentionCandidates(repo, {
      vm: spec.vm,
      onDamaged: (id) => void warnings.push(`snapshot ${id.slice(0, 8)} has a damaged manifest and is left alone`),
      onTagsUnreadable: (id) => void warnings.push(`a tag record of snapshot ${id.slice(0, 8)} does not open: its tags are unknown, so a tag rule keeps it`),
    });
    const groups = applyRetention(snapshots, spec.policy);
    const removed: { id: string; vm: string; time: string }[] = [];
    const total = groups.reduce((n, g) => n + g.decisions.filter((d) => !d.keep).length, 0);
    for (const group of groups) {
      for (const decision of group.decisions) {
        if (decision.keep) continue;
        if (context.signal.aborted) throw new CofferError('E_INTERRUPTED', `forget cancelled after removing ${removed.length} snapshot(s)`);
        if (!spec.dryRun) {
          try {
            await deleteSnapshot(repo, decision.snapshot.id);
          } catch (error) {
            if (!isCofferError(error, 'E_SNAPSHOT_LOCKED') && !isCofferError(error, 'E_SNAPSHOT_PROTECTED')) throw error;
            decision.keep = true;
            decision.reasons.push(isCofferError(error, 'E_SNAPSHOT_LOCKED') ? 'locked' : 'protected');
            continue;
          }
        }
        removed.push({ id: decision.snapshot.id, vm: decision.snapshot.vm, time: decision.snapshot.time });
        context.log(`${spec.dryRun ? 'would remove' : 'removed'} snapshot ${decision.snapshot.id.slice(0, 8)} of ${decision.snapshot.vm} (${decision.snapshot.time})`);
        context.progress(removed.length, total);
      }
    }
    const vms = groups.map((g) => ({ vm: g.vm, decisions: g.decisions.map((d) => ({ id: d.snapshot.id, time: d.snapshot.time, keep: d.keep, reasons: d.reasons })) }));
    const summary = `${spec.dryRun ? 'would remove' : 'removed'} ${removed.length} snapshot(s), kept ${snapshots.length - removed.length}, in ${groups.length} VM(s)`;
    if (!spec.prune || spec.dryRun || removed.length === 0) {
      return { summary, warnings, figures: { snapshots: snapshots.length, removed: removed.length, kept: snapshots.length - removed.length }, detail: { dryRun: spec.dryRun, removed, vms } };
    }
    const pruned = await pruneWithReport(repo, { dryRun: false, waitMs: 30 * 60_000 }, context);
    return {
      summary: `${summary}; then ${pruned.summary}`,
      warnings: [...warnings, ...pruned.warnings],
      figures: { snapshots: snapshots.length, removed: removed.length, kept: snapshots.length - removed.length, ...pruned.figures },
      detail: { dryRun: false, removed, vms, prune: pruned.detail },
    };
  });
}
