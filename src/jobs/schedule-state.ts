/**
 * The run semantics of a scheduled job, as Proxmox documents them for its backup jobs and
 * issue #8 demands, as pure functions over an injected clock. The server keeps one
 * {@link ScheduleState} per job (in its database) and calls {@link decideRun} on each tick and
 * at start; nothing here reads the clock or remembers anything between calls.
 *
 * - **No overlap.** A firing that comes while the job still runs does not start a second
 *   run: it is skipped, and the decision says so, so the server records and notifies it.
 * - **Missed while down.** Firings that passed while the server was not running (before
 *   `upSince`) run once at start when `repeatMissed` is set, however many were missed; without
 *   it they are dropped (and reported) and the job waits for its next firing.
 * - **Edits never catch up.** Creating a job or editing its schedule settles every firing up to
 *   that moment ({@link scheduleEdited}): the next run is the new schedule's first firing after
 *   the edit.
 * - **Late ticks run once.** If several firings passed while the server was up (a suspended
 *   process, a slow tick), the job runs once, for the latest.
 */
import type { Schedule } from './calendar/index.js';

/** What the scheduler remembers about one job between ticks. */
export interface ScheduleState {
  /** Every firing at or before this instant is settled: it ran, was skipped or dropped, or predates the schedule's last edit. */
  readonly settledUntil: Date;
}

/** The state of a job created, or whose schedule was edited, at `now`: no firing before `now` will ever run. */
export function scheduleEdited(now: Date, state?: ScheduleState): ScheduleState {
  return { settledUntil: state !== undefined && state.settledUntil > now ? state.settledUntil : now };
}

/** The facts {@link decideRun} decides from. */
export interface RunCheck {
  /** The current time (the caller's clock). */
  readonly now: Date;
  /** When this scheduler started watching: firings before it were missed while the server was down. */
  readonly upSince: Date;
  /** Whether a run of the job is in progress (scheduled or on demand). */
  readonly running: boolean;
  /** Run once at start for firings missed while the server was down (Proxmox's `repeat-missed`). */
  readonly repeatMissed: boolean;
}

/** What to do now. Every decision carries the state to store (whatever the action). */
export type RunDecision =
  /** Start a run for `firing`; `missed` when it is the catch-up run for firings missed while down. */
  | { readonly action: 'start'; readonly firing: Date; readonly missed: boolean; readonly state: ScheduleState }
  /** The job still runs: `count` firings up to `firing` are skipped (record and notify them). */
  | { readonly action: 'skip-overlap'; readonly firing: Date; readonly count: number; readonly state: ScheduleState }
  /** `count` firings up to `firing` were missed while down and `repeatMissed` is off: they do not run. */
  | { readonly action: 'drop-missed'; readonly firing: Date; readonly count: number; readonly state: ScheduleState }
  /** Nothing is due: ask again at `until` (undefined: the schedule never fires again). */
  | { readonly action: 'wait'; readonly until: Date | undefined; readonly state: ScheduleState };

/** Counting stops here; a count this high means "at least". Bounds the work after a long downtime of a dense schedule. */
export const MAX_COUNTED_FIRINGS = 10_000;

/**
 * Decides whether the job starts now. Pure: the same inputs give the same decision.
 * @example
 * const decision = decideRun(schedule, state, { now, upSince, running: false, repeatMissed: true });
 * store(decision.state); if (decision.action === 'start') startJob(decision.firing);
 */
export function decideRun(schedule: Schedule, state: ScheduleState, check: RunCheck): RunDecision {
  const due = dueFirings(schedule, state.settledUntil, check.now);
  if (due === undefined) return { action: 'wait', until: schedule.next(state.settledUntil), state };
  const settled: ScheduleState = { settledUntil: due.last };
  if (check.running) return { action: 'skip-overlap', firing: due.last, count: due.count, state: settled };
  if (due.last >= check.upSince) return { action: 'start', firing: due.last, missed: false, state: settled };
  if (check.repeatMissed) return { action: 'start', firing: due.last, missed: true, state: settled };
  return { action: 'drop-missed', firing: due.last, count: due.count, state: settled };
}

/** The firings in (from, now]: how many (up to {@link MAX_COUNTED_FIRINGS}) and the latest, or undefined if none. */
function dueFirings(schedule: Schedule, from: Date, now: Date): { last: Date; count: number } | undefined {
  let last: Date | undefined;
  let count = 0;
  for (let next = schedule.next(from); next !== undefined && next <= now; next = schedule.next(next)) {
    last = next;
    if (++count === MAX_COUNTED_FIRINGS) return { last: latestFiring(schedule, last, now), count };
  }
  return last === undefined ? undefined : { last, count };
}

/** The latest firing in [known, now], found by looking back from `now` over growing spans so a dense schedule is not walked firing by firing. */
function latestFiring(schedule: Schedule, known: Date, now: Date): Date {
  for (const span of [60_000, 3_600_000, 86_400_000, 32 * 86_400_000, 366 * 86_400_000]) {
    const start = new Date(Math.max(known.getTime(), now.getTime() - span));
    let latest: Date | undefined;
    for (let next = schedule.next(start); next !== undefined && next <= now; next = schedule.next(next)) latest = next;
    if (latest !== undefined) return latest;
  }
  let latest = known;
  for (let next = schedule.next(known); next !== undefined && next <= now; next = schedule.next(next)) latest = next;
  return latest;
}
