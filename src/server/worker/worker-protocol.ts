/**
 * The messages between the task runner (parent) and a worker process (child), over Node's IPC
 * channel (`child_process.fork`, JSON serialization). One worker runs one task, then exits.
 *
 *   parent → child   { type: 'start', taskId, kind, spec, rates }           once, first (spec: the kind's, kinds/kind-specs.ts)
 *                    { type: 'rates', rates }                                   when the fair share changes
 *                    { type: 'cancel' }                                         abort cleanly (then SIGTERM, then SIGKILL)
 *   child → parent   { type: 'progress', done, total, latencyMs?, sourceBytesRead? }
 *                                                                              at most every PROGRESS_INTERVAL_MS (WorkerProgress)
 *                    { type: 'log', level, line }
 *                    { type: 'report', report }                                 what a running task offers so far (instant recovery: its NBD URIs)
 *                    { type: 'result', result }                                 the task ended well; the child exits 0
 *                    { type: 'error', code, message }                           it failed; the child exits 1
 *
 * A child that exits without sending `result` or `error` crashed (a signal, out of memory):
 * the parent fails the task with E_WORKER_FAILED. Rates are bytes per second for this worker
 * alone (the parent divides each rule among the tasks under it); absent means unlimited.
 */
import type { VmBackupResult } from '../../backup/index.js';
import type { TaskKind } from '../tasks/index.js';
import type { TaskReport } from './kinds/task-report.js';

/** Bytes per second this worker may read from its source and write to its repository. */
export interface WorkerRates {
  sourceRead?: number;
  repositoryWrite?: number;
}

export type ToWorker =
  | { type: 'start'; taskId: string; kind: TaskKind; spec: unknown; rates: WorkerRates }
  | { type: 'rates'; rates: WorkerRates }
  | { type: 'cancel' };

/**
 * A task's progress. A backup's `done` counts the ranges it skipped unread (zero, unallocated,
 * unchanged) as it passes them; `sourceBytesRead` counts only what it read from the source.
 */
export interface WorkerProgress {
  /** Work done so far, out of `total` (a backup: bytes of its disks). */
  done: number;
  total: number;
  /** A backup: the mean milliseconds per source read since its previous report (absent: none ended since). */
  latencyMs?: number;
  /** A backup: the bytes read from its source since it started, every disk (what its `sourceRead` rate limits). */
  sourceBytesRead?: number;
}

export type FromWorker =
  | ({ type: 'progress' } & WorkerProgress)
  | { type: 'log'; level: 'info' | 'warning' | 'error'; line: string }
  | { type: 'report'; report: TaskReport }
  | { type: 'result'; result: VmBackupResult | TaskReport }
  | { type: 'error'; code: string; message: string };

/** Progress messages are spaced at least this far apart (a fast backup would flood the channel and the database). */
export const PROGRESS_INTERVAL_MS = 250;
