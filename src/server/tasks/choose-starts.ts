/**
 * The dispatcher's decision, pure: which queued tasks start now, and which will never start
 * because their run's window closed. Layers on jobs' `planStarts` (the concurrency limits and
 * the priority order) what the planner does not know: retries not yet due, windows per run
 * rather than per job, and the source latency guard.
 *
 * Latency guard: a datastore is held while a task running on it still reads its source and
 * reported a mean read latency above the threshold, or has reported none yet; and at most one
 * new task per guarded datastore starts in one pass (it measures before others pile on).
 * When the caller gives `staleMs` (the shared queue: its reports come from other processes,
 * through the database), a report older than that — or, before any, a start older than that —
 * no longer holds: a datastore whose reports went quiet gets one probe per `staleMs`, never a
 * flood (the probe's own start holds it again), and never a hold for ever.
 */
import { planStarts, type ConcurrencyLimits, type PendingTask, type RunningTask } from '../../jobs/index.js';

/** A queued task as the decision needs it. */
export interface QueuedTask {
  readonly id: string;
  readonly runId: string | null;
  readonly vm: string | null;
  readonly host: string;
  readonly datastore: string | null;
  readonly repository: string;
  readonly job: string;
  /** A retry waits until then (ms since the epoch). */
  readonly notBefore: number | null;
}

/** A running task as the decision needs it. */
export interface ActiveTask extends RunningTask {
  /** Still reading its source (it has not reported every byte done). */
  readonly reading: boolean;
  /** The mean source read latency it last reported, ms. */
  readonly latencyMs: number | undefined;
  /** When it reported `latencyMs` or, before any report, when it started (ms since the epoch, on `now`'s clock): only read with `staleMs`. */
  readonly reportedAt?: number;
}

/** The facts besides the queued and running tasks. */
export interface ChooseOptions {
  readonly now: Date;
  readonly limits: ConcurrencyLimits;
  /** Per run: when its window closes (ms since the epoch). */
  readonly windowEnds: ReadonlyMap<string, number>;
  /** Per VM: its last success and whether it missed its job's last window. */
  readonly vmStates: ReadonlyMap<string, { lastSuccess?: number; missedWindow: boolean }>;
  /**
   * `staleMs`: a running task's latency report (or its start, before any report) older than
   * this no longer holds its datastore; absent, reports never go stale (one process: a worker
   * that dies ends its task at once).
   */
  readonly latencyGuard?: { readonly thresholdMs: number; readonly staleMs?: number };
}

/** Start `start` now, in order; end `windowClosed` (they go first next time). */
export function chooseStarts<T extends QueuedTask>(queued: readonly T[], running: readonly ActiveTask[], options: ChooseOptions): { start: T[]; windowClosed: T[] } {
  const now = options.now.getTime();
  const windowClosed: T[] = [];
  const open: T[] = [];
  for (const task of queued) {
    if (task.notBefore !== null && task.notBefore > now) continue;
    const end = task.runId === null ? undefined : options.windowEnds.get(task.runId);
    if (end !== undefined && now >= end) windowClosed.push(task);
    else open.push(task);
  }
  const guard = options.latencyGuard;
  const held = new Set<string>();
  if (guard !== undefined) {
    for (const r of running) {
      if (r.datastore === undefined || !r.reading) continue;
      if (r.latencyMs !== undefined && r.latencyMs <= guard.thresholdMs) continue;
      if (guard.staleMs !== undefined && r.reportedAt !== undefined && now - r.reportedAt > guard.staleMs) continue;
      held.add(r.datastore);
    }
  }
  const pending: (PendingTask & { task: T })[] = open
    .filter((task) => task.datastore === null || !held.has(task.datastore))
    .map((task) => {
      const state = task.vm === null ? undefined : options.vmStates.get(task.vm);
      return {
        task, id: task.id, host: task.host, repository: task.repository, job: task.job,
        ...(task.datastore === null ? {} : { datastore: task.datastore }),
        ...(state?.lastSuccess === undefined ? {} : { lastSuccess: new Date(state.lastSuccess) }),
        ...(state?.missedWindow === true ? { missedLastWindow: true } : {}),
      };
    });
  const plan = planStarts(pending, { running, limits: options.limits, now: options.now });
  const start: T[] = [];
  const probing = new Set<string>();
  for (const { task } of plan.start) {
    if (guard !== undefined && task.datastore !== null) {
      if (probing.has(task.datastore)) continue;
      probing.add(task.datastore);
    }
    start.push(task);
  }
  return { start, windowClosed };
}
