/**
 * The sweep of ended tasks: no notification is lost to a crash, a dropped listener or a change
 * of leader.
 *
 * Live events reach the notifier through the runner's emitter and, with several servers,
 * through PostgreSQL NOTIFY, which is not durable. Three gaps lose them: a server killed between
 * a task's end and the notifier's record (the bridge's queue is in memory); a leader whose
 * listener was disconnected for a while; the seconds in which no server leads (a leader died,
 * its successor takes over when the lease runs out) while workers go on ending tasks. The sweep
 * closes them: the server that delivers notifications reads from the state database the tasks
 * and runs that ended since its last pass and hands them to the bridge again. The notifier
 * records an event of a task or a run once (NotificationEvent.taskId/runId), so what was
 * already notified is not sent twice; what was missed is sent late rather than never.
 *
 * Watermark: `notify_state['event-sweep.until']`, the time (ms) up to which a pass handed
 * everything over. A pass covers [until − SLACK_MS, now − SETTLE_MS): the slack takes in the
 * clocks of workers that run behind and rows committed after a later one; the settle time lets
 * a task's own live event go first. On a database that never had a pass the first one only
 * sets the watermark to now (older history was notified, or not, before the sweep existed).
 * Passes run one at a time: when the server starts delivering, then every PASS_EVERY_MS.
 */
import type { Kysely } from 'kysely';
import type { EventBridge } from './service-events.js';
import type { StateSchema } from './state/index.js';
import type { EndedWindow, RunInfo, TaskInfo } from './tasks/index.js';

export const SWEEP_STATE_KEY = 'event-sweep.until';
export const SLACK_MS = 10 * 60_000;
export const SETTLE_MS = 5_000;
export const PASS_EVERY_MS = 60_000;
/** Rows read per query; a full page goes on after its last row. */
export const PAGE = 500;

export interface EventSweepOptions {
  db: Kysely<StateSchema>;
  /** Tasks, and runs, that ended in a window of end times, by end then id, at most `limit` (TaskRunner's). */
  tasksEndedBetween(window: EndedWindow, limit: number): Promise<TaskInfo[]>;
  runsEndedBetween(window: EndedWindow, limit: number): Promise<RunInfo[]>;
  bridge: Pick<EventBridge, 'replay'>;
  /** The clock, ms since the epoch (default Date.now). */
  now?: () => number;
  onError(error: unknown): void;
}

export class EventSweep {
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly options: EventSweepOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Runs a pass now and one every PASS_EVERY_MS until `stop`. */
  start(): void {
    if (this.timer !== undefined) return;
    void this.pass();
    this.timer = setInterval(() => void this.pass(), PASS_EVERY_MS);
    this.timer.unref();
  }

  /** Stops the passes; resolves when the pass under way has ended. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.chain;
  }

  /** One pass, after the one under way (failures go to onError; the next pass retries the same window). */
  pass(): Promise<void> {
    this.chain = this.chain.then(() => this.sweep()).catch((error: unknown) => this.options.onError(error));
    return this.chain;
  }

  private async sweep(): Promise<void> {
    const { db } = this.options;
    const now = this.now();
    const state = await db.selectFrom('notify_state').select('value').where('key', '=', SWEEP_STATE_KEY).executeTakeFirst();
    if (state === undefined) return this.setWatermark(now);
    const from = Number(state.value) - SLACK_MS;
    const to = now - SETTLE_MS;
    if (to <= from) return;
    // Tasks first, then runs: a run's job.finished groups the VM events its tasks recorded.
    const tasks = await allPages((window) => this.options.tasksEndedBetween(window, PAGE), from, to);
    const runs = await allPages((window) => this.options.runsEndedBetween(window, PAGE), from, to);
    await this.options.bridge.replay(tasks, runs);
    await this.setWatermark(Math.max(Number(state.value), to));
  }

  private async setWatermark(until: number): Promise<void> {
    await this.options.db
      .insertInto('notify_state')
      .values({ key: SWEEP_STATE_KEY, value: String(until) })
      .onConflict((c) => c.column('key').doUpdateSet({ value: String(until) }))
      .execute();
  }
}

/** Every row of a window, page by page (keyset: the last row's end and id). */
async function allPages<T extends { id: string; ended: string | null }>(read: (window: EndedWindow) => Promise<T[]>, from: number, to: number): Promise<T[]> {
  const all: T[] = [];
  let after: EndedWindow['after'];
  for (;;) {
    const page = await read({ from, to, ...(after === undefined ? {} : { after }) });
    all.push(...page);
    const last = page.at(-1);
    if (page.length < PAGE || last === undefined || last.ended === null) return all;
    after = { at: Date.parse(last.ended), id: last.id };
  }
}
