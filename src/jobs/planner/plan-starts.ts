/**
 * Which pending VM backup tasks start now. The planner is called whenever something changes
 * (a run fires, a task ends, a limit is edited); it never waits and never reads the clock.
 *
 * Order: tasks that missed their job's last window first, then the oldest last successful
 * backup first (never backed up counts as oldest), then the order given (stable). Walking that
 * order, a task starts when every limit allows it; a task held back by a limit does not hold
 * back the tasks after it (another host may be free). A task whose job's window has closed
 * does not start at all: it is returned apart, to be marked `missedLastWindow` so it goes
 * first next time.
 *
 * Cost: one sort and one pass, O(n log n) for n pending tasks.
 */
import { LimitCounter, validateLimits, type ConcurrencyLimits, type Layer, type TaskPlacement } from './limits.js';

/** A VM backup waiting for its turn. */
export interface PendingTask extends TaskPlacement {
  /** Unique among pending and running tasks. */
  readonly id: string;
  /** When the VM's last successful backup ended; undefined if it never had one (it goes first). */
  readonly lastSuccess?: Date;
  /** Its job's last window closed before it started: it goes before every other task. */
  readonly missedLastWindow?: boolean;
  /** How long it is expected to take, from its history (used by forecasts, not by the order). */
  readonly expectedDurationMs?: number;
}

/** A VM backup in progress. */
export interface RunningTask extends TaskPlacement {
  readonly id: string;
}

/** The inputs of {@link planStarts} besides the pending tasks. */
export interface PlanOptions {
  readonly running: readonly RunningTask[];
  readonly limits: ConcurrencyLimits;
  /** The current time (the caller's clock). */
  readonly now: Date;
  /** Per job: when its backup window closes; no task of it starts at or after that instant. Jobs not listed have no window. */
  readonly windowEnds?: Readonly<Record<string, Date>>;
}

/** The decision: every pending task is in exactly one list. */
export interface StartPlan<T extends PendingTask = PendingTask> {
  /** Start these now, in this order. */
  readonly start: T[];
  /** Held back by a limit; `layer` is the first that does (for the "waiting for …" display and the bottleneck report). */
  readonly waiting: { readonly task: T; readonly layer: Layer }[];
  /** Their job's window has closed: they do not run this time and go first next time. */
  readonly windowClosed: T[];
}

/** The priority order: missed last window, then oldest last success, then input order. Returns a new array. */
export function inPriorityOrder<T extends PendingTask>(pending: readonly T[]): T[] {
  const keyed = pending.map((task, index) => ({ task, index, missed: task.missedLastWindow === true ? 0 : 1, age: task.lastSuccess?.getTime() ?? -Infinity }));
  keyed.sort((a, b) => a.missed - b.missed || (a.age === b.age ? 0 : a.age < b.age ? -1 : 1) || a.index - b.index);
  return keyed.map((entry) => entry.task);
}

/**
 * Decides which pending tasks start now under the limits, given the tasks running.
 * @throws CofferError E_USAGE for a limit that is not a whole number ≥ 0 or Infinity.
 */
export function planStarts<T extends PendingTask>(pending: readonly T[], options: PlanOptions): StartPlan<T> {
  validateLimits(options.limits);
  const counter = new LimitCounter(options.limits);
  for (const task of options.running) counter.add(task);
  return planInOrder(inPriorityOrder(pending), counter, options);
}

/**
 * {@link planStarts} on tasks already in priority order, counting into `counter` (which
 * holds the running tasks and gets the started ones added). For callers that plan repeatedly,
 * such as the forecast.
 */
export function planInOrder<T extends PendingTask>(ordered: readonly T[], counter: LimitCounter, options: Pick<PlanOptions, 'now' | 'windowEnds'>): StartPlan<T> {
  const start: T[] = [];
  const waiting: { task: T; layer: Layer }[] = [];
  const windowClosed: T[] = [];
  const now = options.now.getTime();
  for (const task of ordered) {
    const windowEnd = options.windowEnds !== undefined && Object.hasOwn(options.windowEnds, task.job) ? options.windowEnds[task.job] : undefined;
    if (windowEnd !== undefined && now >= windowEnd.getTime()) {
      windowClosed.push(task);
      continue;
    }
    const layer = counter.blockingLayer(task);
    if (layer !== undefined) {
      waiting.push({ task, layer });
      continue;
    }
    counter.add(task);
    start.push(task);
  }
  return { start, waiting, windowClosed };
}
