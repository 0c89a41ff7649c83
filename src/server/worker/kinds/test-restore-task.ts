/**
 * The `test-restore` kind: proves a snapshot restores without writing a restored copy (every
 * block read back, every volume's files walked and read, each filesystem's own checker on a
 * temporary copy), as `coffer test-restore`; the report is stored with the snapshot as its
 * `test-restore` note. A failed check fails the task (E_VERIFY_FAILED) and keeps the report.
 */
import { CofferError } from '../../../errors/index.js';
import { addSnapshotNote, resolveSnapshot, TEST_RESTORE_NOTE } from '../../../repo/index.js';
import { testRestore } from '../../../restore/index.js';
import type { TestRestoreSpec } from './kind-specs.js';
import { withTaskRepository } from './open-repository.js';
import type { KindContext, TaskReport } from './task-report.js';

export async function runTestRestoreTask(spec: TestRestoreSpec, context: KindContext): Promise<TaskReport> {
  return withTaskRepository(spec.repository, async (repo) => {
    const snapshot = await resolveSnapshot(repo, spec.snapshot);
    const boot = spec.boot === undefined ? {} : { boot: { ...spec.boot, signal: context.signal } };
    const r = await testRestore(repo, snapshot, { fsck: spec.fsck, signal: context.signal, onPhase: (phase) => context.log(phase), ...boot });
    await addSnapshotNote(repo, snapshot.id, TEST_RESTORE_NOTE, r);
    const files = r.volumes.reduce((n, v) => n + (v.files ?? 0), 0);
    const report: TaskReport = {
      summary: `test restore of ${snapshot.vm} (snapshot ${snapshot.id.slice(0, 8)}) ${r.passed ? 'passed' : 'FAILED'}: ${r.disks.length} disk(s), ${r.volumes.length} volume(s), ${files} files read`,
      warnings: r.warnings,
      figures: { disks: r.disks.length, volumes: r.volumes.length, files, durationMs: r.durationMs },
      detail: { ...r },
    };
    if (!r.passed) {
      context.report(report);
      throw new CofferError('E_VERIFY_FAILED', `test restore of snapshot ${snapshot.id.slice(0, 8)} failed: ${r.failures.join('; ')}`);
    }
    return report;
  });
}
