/**
 * One leader among several servers for what must run once per site, not once per server
 * (docs/scale.md "Several servers"): the notifier's deliveries and the notifications of task
 * events, the jobs' upkeep (retention, verify, test-restore and prune schedules) and the
 * health checks. The leader is chosen through the database — a lease row per role in
 * `leader_leases` (migration 31), not an advisory lock, so that it is the same on both engines,
 * survives a pooled connection being replaced, and a leader cut off from the database loses it
 * at a known time:
 *
 * - every `leaseMs / 3` each server runs one statement: take the row when it is free, expired
 *   (`until` < now, the database's clock) or already its own, setting `until` = now + lease;
 *   the row's primary key and the statement's WHERE let exactly one server hold it;
 * - a server that took it becomes leader (`onElected`); one whose renewal did not succeed
 *   within its lease, counted on its own monotonic clock from the last success, steps down
 *   (`onDeposed`) before any other server can take the row — it stops acting first;
 * - a leader killed (-9, power loss) is replaced within a lease and a renewal interval
 *   (`leaseMs * 4 / 3`); a leader stopped gracefully deletes its row, and another takes it at
 *   its next try (within `leaseMs / 3`).
 *
 * `onElected` and `onDeposed` run one at a time, in order; each try has a deadline (a third
 * of the lease), so a dead database never hangs the loop.
 */
import { performance } from 'node:perf_hooks';
import type { Kysely } from 'kysely';
import type { StateSchema } from '../state/index.js';
import { databaseNow } from './database-clock.js';

/** The role of the leader that delivers notifications, keeps the jobs' upkeep and checks health. */
export const UPKEEP_ROLE = 'upkeep';

export interface LeaderLeaseOptions {
  /** What is led (`upkeep`). */
  role: string;
  /** This server's name (unique among live servers). */
  holder: string;
  leaseMs: number;
  /** Became leader: start what only the leader runs. */
  onElected(): void | Promise<void>;
  /** No longer leader (lost, or stopping): stop it. */
  onDeposed(): void | Promise<void>;
  /** A try that failed (the database), never thrown. */
  onError?(error: unknown): void;
}

/**
 * Takes or renews `role` for `holder` until the database's now + `leaseMs`.
 * @returns whether `holder` holds it now.
 */
export async function tryLead(db: Kysely<StateSchema>, role: string, holder: string, leaseMs: number): Promise<boolean> {
  const now = await databaseNow(db);
  const result = await db.insertInto('leader_leases').values({ role, holder, until: now + leaseMs })
    .onConflict((c) => c.column('role')
      .doUpdateSet({ holder, until: now + leaseMs })
      .where((eb) => eb.or([eb('leader_leases.holder', '=', holder), eb('leader_leases.until', '<', now)])))
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
}

/** Who holds `role` now (undefined: nobody, or expired). */
export async function currentLeader(db: Kysely<StateSchema>, role: string): Promise<string | undefined> {
  const now = await databaseNow(db);
  const row = await db.selectFrom('leader_leases').select(['holder', 'until']).where('role', '=', role).executeTakeFirst();
  return row !== undefined && Number(row.until) >= now ? row.holder : undefined;
}

/** The election loop of one server for one role. */
export class LeaderLease {
  private timer: NodeJS.Timeout | undefined;
  private isLeader = false;
  /** performance.now() when the last successful try began. */
  private heldSince = 0;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly db: Kysely<StateSchema>, private readonly options: LeaderLeaseOptions) {}

  /**
   * Whether this server leads now: elected, and its last renewal is recent enough that no other
   * server can have taken the row. Counted here, at each question, on the monotonic clock — not
   * only at the next try — so a leader whose event loop stalled past the lease (a loaded
   * machine) stops acting at once instead of acting beside its successor until its timer runs.
   */
  get leading(): boolean {
    return this.isLeader && performance.now() - this.heldSince < this.options.leaseMs * 2 / 3;
  }

  /** Tries at once, then every third of the lease. */
  start(): void {
    if (this.timer !== undefined || this.stopped) return;
    const every = Math.max(50, Math.floor(this.options.leaseMs / 3));
    this.timer = setInterval(() => void this.tryOnce(), every);
    this.timer.unref();
    void this.tryOnce();
  }

  /** One try now (the loop calls it; tests may too). Resolves when its consequences (elected, deposed) have run. */
  tryOnce(): Promise<void> {
    this.chain = this.chain.then(() => this.attempt());
    return this.chain;
  }

  /** Stops trying; a leader steps down (onDeposed) and frees the row at once for the others. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.chain;
    if (!this.isLeader) return;
    await this.setLeading(false);
    await this.db.deleteFrom('leader_leases').where('role', '=', this.options.role).where('holder', '=', this.options.holder).execute()
      .catch((error: unknown) => this.options.onError?.(error));
  }

  private async attempt(): Promise<void> {
    if (this.stopped) return;
    const began = performance.now();
    const deadlineMs = Math.max(50, Math.floor(this.options.leaseMs / 3));
    let timer: NodeJS.Timeout | undefined;
    let held: boolean | undefined;
    try {
      held = await Promise.race([
        tryLead(this.db, this.options.role, this.options.holder, this.options.leaseMs),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`leader lease ${this.options.role}: the database did not answer within ${deadlineMs} ms`)), deadlineMs))),
      ]);
    } catch (error) {
      this.options.onError?.(error);
    } finally {
      clearTimeout(timer);
    }
    if (this.stopped) return;
    if (held === true) {
      this.heldSince = began;
      if (!this.isLeader) await this.setLeading(true);
    } else if (held === false) {
      if (this.isLeader) await this.setLeading(false);
    } else if (this.isLeader && performance.now() - this.heldSince >= this.options.leaseMs * 2 / 3) {
      // Unanswered: step down well before the row can expire for the others (a third of the lease to spare).
      await this.setLeading(false);
    }
  }

  private async setLeading(leading: boolean): Promise<void> {
    this.isLeader = leading;
    try {
      await (leading ? this.options.onElected() : this.options.onDeposed());
    } catch (error) {
      this.options.onError?.(error);
    }
  }
}
