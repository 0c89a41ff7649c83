/**
 * What a task's queue delay is made of (bench/workers.ts, issue #10's queue-delay row): the
 * workers run with `--trace-queue` and print one `queue: {json}` line per hand-out
 * (TakeTiming: when the runner asked, how long it waited for the dispatch lock, how long it
 * worked under it). Each task's delay (night-run.ts: from the moment it could run to its
 * start, set under the lock) is split at the hand-out that started it:
 *
 *   could run ──(to call: the freeing worker's bookkeeping, a wake-up)──> take called
 *     ──(lock wait: BEGIN, other workers' hand-outs)──> lock held ──(under lock)──> started_at
 *
 * Tasks are told apart by what let them run: `first` (could run at their creation: the run's
 * start, every worker woken at once) and `freed` (a slot freed by another task's end).
 * One machine: the workers' clocks and the database's are the same clock.
 */
import type { TakeTiming } from '../src/server/cluster/task-queue.js';
import type { TaskTiming } from '../src/server/cluster/night-run.js';

/** The hand-outs a worker printed with `--trace-queue`. */
export function parseTakeTimings(stdout: string): TakeTiming[] {
  const out: TakeTiming[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('queue: ')) continue;
    out.push(JSON.parse(line.slice('queue: '.length)) as TakeTiming);
  }
  return out;
}

/** One task's delay, split. */
export interface DelayParts {
  readonly cause: 'first' | 'freed';
  readonly delayMs: number;
  readonly toCallMs: number;
  readonly lockWaitMs: number;
  readonly underLockMs: number;
}

/** Median and 90th percentile of each part, per cause (and all together). */
export interface DelayBreakdown {
  readonly cause: 'all' | 'first' | 'freed';
  readonly tasks: number;
  readonly delay: Quantiles;
  readonly toCall: Quantiles;
  readonly lockWait: Quantiles;
  readonly underLock: Quantiles;
}

export interface Quantiles {
  readonly median: number;
  readonly p90: number;
}

/** The median and the 90th percentile (nearest rank) of `values`. */
export function quantiles(values: readonly number[]): Quantiles {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? 0;
  return { median: at(0.5), p90: at(0.9) };
}

/** Splits each task's delay at the hand-out (of its worker) whose transaction set its start. */
export function splitDelays(tasks: readonly TaskTiming[], delays: readonly number[], takes: ReadonlyMap<string, readonly TakeTiming[]>): DelayParts[] {
  const parts: DelayParts[] = [];
  tasks.forEach((task, i) => {
    const delayMs = delays[i] ?? 0;
    const couldRun = task.startedAt - delayMs;
    const take = (takes.get(task.worker) ?? []).find((t) => t.taken > 0 && t.at <= task.startedAt + 1 && task.startedAt <= t.at + t.totalMs + 1);
    if (take === undefined) return;
    const locked = take.at + take.lockWaitMs;
    parts.push({
      cause: couldRun <= task.createdAt ? 'first' : 'freed', delayMs,
      toCallMs: Math.max(0, take.at - couldRun), lockWaitMs: take.lockWaitMs, underLockMs: Math.max(0, task.startedAt - locked),
    });
  });
  return parts;
}

/** The breakdown's rows: all tasks, then by cause. */
export function summarize(parts: readonly DelayParts[]): DelayBreakdown[] {
  const row = (cause: DelayBreakdown['cause'], of: readonly DelayParts[]): DelayBreakdown => ({
    cause, tasks: of.length, delay: quantiles(of.map((p) => p.delayMs)), toCall: quantiles(of.map((p) => p.toCallMs)),
    lockWait: quantiles(of.map((p) => p.lockWaitMs)), underLock: quantiles(of.map((p) => p.underLockMs)),
  });
  return [row('all', parts), row('first', parts.filter((p) => p.cause === 'first')), row('freed', parts.filter((p) => p.cause === 'freed'))];
}

/** Hand-outs that took nothing (a worker with no free slot or nothing it may take), and their time under the lock. */
export function emptyTakes(takes: ReadonlyMap<string, readonly TakeTiming[]>): { count: number; lockedMs: Quantiles } {
  const empty = [...takes.values()].flat().filter((t) => t.taken === 0);
  return { count: empty.length, lockedMs: quantiles(empty.map((t) => t.lockedMs)) };
}

/** Text lines for the log. */
export function renderBreakdown(rows: readonly DelayBreakdown[], empty: { count: number; lockedMs: Quantiles }): string[] {
  const q = (v: Quantiles) => `${v.median.toFixed(1)} / ${v.p90.toFixed(1)}`;
  return [
    'cause  | tasks | delay med / p90 ms | to call | lock wait | under lock',
    ...rows.map((r) => `${r.cause.padEnd(6)} | ${String(r.tasks).padStart(5)} | ${q(r.delay).padStart(18)} | ${q(r.toCall)} | ${q(r.lockWait)} | ${q(r.underLock)}`),
    `hand-outs that took nothing: ${empty.count}, under the lock ${q(empty.lockedMs)} ms`,
  ];
}
