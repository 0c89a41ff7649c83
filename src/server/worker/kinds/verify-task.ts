/**
 * The `verify` kind: every chunk every snapshot refers to exists, and with `readData` (all of
 * them, or a subset `N/M` / `P%`) reads back intact; each snapshot's verified share is
 * recorded as its `verification` note, as `coffer verify` does. Damage fails the task with
 * E_VERIFY_FAILED; its report (what is damaged, which snapshots and byte ranges) is kept.
 */
import { CofferError } from '../../../errors/index.js';
import { parseVerificationSubset, recordSnapshotVerifications, verifyRepository } from '../../../repo/index.js';
import type { VerifySpec } from './kind-specs.js';
import { withTaskRepository } from './open-repository.js';
import type { KindContext, TaskReport } from './task-report.js';

export async function runVerifyTask(spec: VerifySpec, context: KindContext): Promise<TaskReport> {
  const readData = spec.readData || spec.subset !== undefined;
  const subset = spec.subset === undefined ? undefined : parseVerificationSubset(spec.subset, 'subset');
  return withTaskRepository(spec.repository, async (repo) => {
    const started = Date.now();
    const report = await verifyRepository(repo, {
      readData,
      now: () => new Date(),
      ...(subset === undefined ? {} : { subset }),
      onProgress: (p) => {
        if (context.signal.aborted) throw new CofferError('E_INTERRUPTED', 'verify cancelled');
        if (p.phase === 'chunks') context.progress(p.done, p.total);
      },
    });
    if (readData) await recordSnapshotVerifications(repo, report.verification);
    const what = readData ? `read and checked ${report.chunksRead} chunks (${report.bytesRead} bytes)${spec.subset === undefined ? '' : ` of subset ${spec.subset}`}` : 'checked that every chunk exists';
    const ok = report.damaged.length === 0;
    const result: TaskReport = {
      summary: `${report.snapshots} snapshot(s), ${report.chunksReferenced} chunks referenced; ${what}; ${ok ? 'no errors were found' : `${report.damaged.length} damaged object(s)`}`,
      warnings: [],
      figures: { snapshots: report.snapshots, chunksReferenced: report.chunksReferenced, chunksRead: report.chunksRead, bytesRead: report.bytesRead, damaged: report.damaged.length, quarantined: report.quarantined, durationMs: Date.now() - started },
      detail: { ok, readData, ...(spec.subset === undefined ? {} : { subset: spec.subset }), damaged: report.damaged, affected: report.affected },
    };
    for (const d of report.damaged) context.log(`DAMAGED ${d.kind} ${d.id.slice(0, 16)}… (${d.problem}): ${d.message}`, 'error');
    if (!ok) {
      context.report(result);
      throw new CofferError('E_VERIFY_FAILED', `verify found ${report.damaged.length} damaged object(s) in repository ${spec.repository.name}`);
    }
    return result;
  });
}

