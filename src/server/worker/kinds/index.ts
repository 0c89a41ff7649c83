/**
 * The task kinds besides `backup`, each a small module calling the same library code as the
 * CLI (restore, verify, prune, forget, sync, test restore, instant recovery). A kind gets its
 * spec (kind-specs.ts) and a {@link KindContext} (cancel signal, log, progress, interim
 * report) and returns a {@link TaskReport}; it throws a CofferError when it fails.
 */
import { CofferError } from '../../../errors/index.js';
import type { TaskKind } from '../../tasks/index.js';
import { runForgetTask } from './forget-task.js';
import { runInstantRecoveryTask } from './instant-recovery-task.js';
import type { ForgetSpec, InstantRecoverySpec, PruneSpec, RestoreSpec, SyncSpec, TestRestoreSpec, VerifySpec } from './kind-specs.js';
import { runPruneTask } from './prune-task.js';
import { runRestoreTask } from './restore-task.js';
import { runSyncTask } from './sync-task.js';
import type { KindContext, TaskReport } from './task-report.js';
import { runTestRestoreTask } from './test-restore-task.js';
import { runVerifyTask } from './verify-task.js';

export type { KindContext, TaskReport } from './task-report.js';
export type { ForgetSpec, InstantRecoverySpec, PruneSpec, RepositoryRef, RestoreSpec, SyncSpec, TestRestoreBoot, TestRestoreSpec, VerifySpec } from './kind-specs.js';
export { qemuCommand } from './instant-recovery-task.js';

/** Runs a task of any kind but `backup` (worker-entry.ts runs those). */
export function runTaskKind(kind: TaskKind, spec: unknown, context: KindContext): Promise<TaskReport> {
  switch (kind) {
    case 'restore':
      return runRestoreTask(spec as RestoreSpec, context);
    case 'verify':
      return runVerifyTask(spec as VerifySpec, context);
    case 'prune':
      return runPruneTask(spec as PruneSpec, context);
    case 'forget':
      return runForgetTask(spec as ForgetSpec, context);
    case 'sync':
      return runSyncTask(spec as SyncSpec, context);
    case 'test-restore':
      return runTestRestoreTask(spec as TestRestoreSpec, context);
    case 'instant-recovery':
      return runInstantRecoveryTask(spec as InstantRecoverySpec, context);
    default:
      return Promise.reject(new CofferError('E_USAGE', `no task kind ${kind} in a worker`));
  }
}
