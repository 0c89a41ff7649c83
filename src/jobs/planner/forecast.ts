/**
 * Before a window opens: will tonight's plan fit, and which VMs will not?
 *
 * A list-scheduling simulation of the planner itself: at the window's start, plan which tasks
 * start (same order and limits as {@link planStarts}); each runs for its expected duration
 * (from its history, or a default); at the earliest expected end, free its slots and plan
 * again; repeat until every task has started or can no longer start (its job's window closed,
 * or a limit of 0 holds it). A task "fits" when it is expected to end before its job's window
 * closes, "overruns" when it starts in time but is expected to end after, and "will not start"
 * otherwise.
 *
 * It is an estimate: real durations vary, and the real planner reacts to the real ends. Cost:
 * one plan per expected end, O(n²) for n tasks (600 VMs: a few milliseconds).
 */
import { CofferError } from '../../errors/index.js';
import { LimitCounter, validateLimits, type ConcurrencyLimits } from './limits.js';
import { inPriorityOrder, planInOrder, type PendingTask, type RunningTask } from './plan-starts.js';

/** The inputs of {@link forecastRun} besides the tasks. */
export interface ForecastOptions {
  readonly limits: ConcurrencyLimits;
  /** When the run begins (the window opens). */
  readonly start: Date;
  /** Per job: when its window closes. Jobs not listed have no window. */
  readonly windowEnds?: Readonly<Record<string, Date>>;
  /** Tasks already running at `start`, with when each is expected to end. */
  readonly running?: readonly (RunningTask & { readonly expectedEnd: Date })[];
  /** The expected duration of a task without `expectedDurationMs` (a VM with no history). */
  readonly defaultDurationMs: number;
}

/** One task's expected fate. */
export interface ForecastEntry<T extends PendingTask = PendingTask> {
  readonly task: T;
  /** `fits`: ends before its window closes; `overruns`: starts in time, ends after; `will-not-start`. */
  readonly outcome: 'fits' | 'overruns' | 'will-not-start';
  readonly start?: Date;
  readonly end?: Date;
}

/** The forecast of a run. */
export interface Forecast<T extends PendingTask = PendingTask> {
  /** Every task: the started ones in expected start order, then the ones that will not start. */
  readonly entries: ForecastEntry<T>[];
  /** The tasks expected not to start before their window closes. */
  readonly willNotStart: T[];
  /** The tasks expected to start in time but run past their window. */
  readonly overruns: T[];
  /** When the last started task is expected to end (undefined if none starts). */
  readonly end?: Date;
}

/**
 * Simulates a run of `pending` tasks under the limits and windows.
 * @throws CofferError E_USAGE for a bad limit or a duration that is not a finite number ≥ 0.
 */
export function forecastRun<T extends PendingTask>(pending: readonly T[], options: ForecastOptions): Forecast<T> {
  validateLimits(options.limits);
  const duration = (task: T): number => {
    const ms = task.expectedDurationMs ?? options.defaultDurationMs;
    if (!Number.isFinite(ms) || ms < 0) throw new CofferError('E_USAGE', `the expected duration of task ${task.id} must be a finite number of milliseconds ≥ 0, not ${ms}`);
    return ms;
  };
  const windowEnd = (job: string): number => {
    const end = options.windowEnds !== undefined && Object.hasOwn(options.windowEnds, job) ? options.windowEnds[job] : undefined;
    return end?.getTime() ?? Infinity;
  };

  const counter = new LimitCounter(options.limits);
  const running: { task: RunningTask; end: number }[] = [];
  for (const task of options.running ?? []) {
    counter.add(task);
    running.push({ task, end: task.expectedEnd.getTime() });
  }
  const entries: ForecastEntry<T>[] = [];
  const notStarted: T[] = [];
  let remaining = inPriorityOrder(pending);
  let now = options.start.getTime();
  let lastEnd: number | undefined;

  while (remaining.length > 0) {
    const plan = planInOrder(remaining, counter, { now: new Date(now), windowEnds: options.windowEnds });
    for (const task of plan.start) {
      const end = now + duration(task);
      running.push({ task, end });
      lastEnd = Math.max(lastEnd ?? end, end);
      entries.push({ task, outcome: end > windowEnd(task.job) ? 'overruns' : 'fits', start: new Date(now), end: new Date(end) });
    }
    notStarted.push(...plan.windowClosed);
    remaining = plan.waiting.map((waiting) => waiting.task);
    if (remaining.length === 0) break;
    if (running.length === 0) {
      notStarted.push(...remaining); // held by a limit of 0: nothing will free a slot
      break;
    }
    now = Math.max(now, Math.min(...running.map((entry) => entry.end)));
    for (let i = running.length - 1; i >= 0; i--) {
      const entry = running[i] as { task: RunningTask; end: number };
      if (entry.end <= now) {
        counter.remove(entry.task);
        running.splice(i, 1);
      }
    }
  }
  for (const task of notStarted) entries.push({ task, outcome: 'will-not-start' });
  return {
    entries,
    willNotStart: notStarted,
    overruns: entries.filter((entry) => entry.outcome === 'overruns').map((entry) => entry.task),
    ...(lastEnd === undefined ? {} : { end: new Date(lastEnd) }),
  };
}
