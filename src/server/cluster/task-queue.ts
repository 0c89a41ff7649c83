/**
 * The task queue shared by every worker, in PostgreSQL: the `tasks` table itself (queued rows
 * are the queue). A hand-out (`take`) is one transaction of three statements and the commit:
 *
 * 1. the reads that need no lock — has a running task's lease expired; is a task queued that
 *    this worker could take (another kind, or a backup of a host it declares); the published
 *    limits (cluster-policy.ts); the running runs' window ends (and which of them cancel their
 *    backups then: the runner needs no read of its own) — and, in the same statement, only
 *    if something is queued for this worker and no lease expired, the dispatch lock
 *    (`pg_advisory_xact_lock`, released at commit), then the database's clock. Hand-outs run
 *    one at a time across the cluster, so two workers can never both take the last slot of a
 *    limit; a worker with nothing queued for it never queues on the lock (every end wakes
 *    every worker: queue-wakeups.ts). A worker with no free slot sends no transaction at all:
 *    it only looks for expired leases, at most every second;
 * 2. under the lock, each statement seeing every commit before it began (READ COMMITTED): the
 *    queued tasks with their VMs' last success, and in the same statement the running
 *    backups, counted per layer (global, host, datastore, repository, job) across every
 *    worker. Then the same decision as the single-process runner (`chooseStarts`: the limits,
 *    retries not yet due, closed windows, oldest last success first), restricted to the hosts
 *    this worker declares;
 * 3. the update of the chosen rows that are still queued (a task cancelled since the read is
 *    not taken; the rows the update returns are the hand-out) to `running`, held by this
 *    worker with a lease (`worker`, `started_at` and `lease_until` = now + lease, on the
 *    database's clock read by that statement, after the count), and the commit.
 *
 * If a lease expired, the first statement does not lock: the tasks are put back (`queued`
 * again with attempt + 1, or `interrupted`, E_LEASE_EXPIRED, after `maxAttempts`) in a
 * transaction of their own, each row locked `FOR UPDATE SKIP LOCKED` so that two workers never
 * put one back twice, and the hand-out runs again. From a task's end to the next hand-out's
 * commit: BEGIN, three statements, COMMIT (seven round trips in the version before,
 * 2026-11-26; bench/README.md "Workers").
 *
 * The limits are read just before the lock, not under it: a limit a server publishes while a
 * hand-out runs applies from the next hand-out, as it would had it come a moment later. The
 * counting and the taking, which make a limit hold, stay under the lock.
 *
 * Tasks of other kinds than backup (restore, verify…) have no host: any worker takes them,
 * outside the limits, as the single-process runner does.
 *
 * The source latency guard (the published `latencyGuard`) holds starts across workers: each
 * worker writes its backups' reads with their progress (fenced; migration 33: the mean source
 * read latency, when it wrote it on the database's clock, and whether every byte is read), the
 * second statement reads them for every running backup, and `chooseStarts` holds a datastore
 * as the single-process runner does (a backup still reading that reported a latency above the
 * threshold, or none yet). One difference, since the reports come from other processes: a
 * report (or, before any, a start) older than a lease (`leaseMs`) no longer holds. A lease is
 * how long the cluster trusts a worker it does not hear from, and a reading backup reports
 * every 250 ms: one silent that long is stuck or its writes are lost, and the hold lapses to
 * one probe per lease on that datastore (the probe's own start holds it again), never for
 * ever. A dead worker's backups stop holding when their lease expires and they go back.
 */
import { performance } from 'node:perf_hooks';
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { CofferError } from '../../errors/index.js';
import type { StateSchema } from '../state/index.js';
import type { TaskTable } from '../state/schema.js';
import { chooseStarts, type ActiveTask, type SharedBackup, type SharedDispatch } from '../tasks/index.js';
import { parsePolicy, type ClusterPolicy } from './cluster-policy.js';
import { databaseNow } from './database-clock.js';

/** The advisory lock key of the hand-out (an arbitrary constant: "coff" and 10, the issue). */
export const DISPATCH_LOCK_KEY = 0x636f6666_0a;

/**
 * How often a worker with no free slot looks for expired leases (and the runs that stop at
 * their window's end), at most, ms: every task's end wakes every worker, and the full ones
 * asked the database each time for nothing (≈270 reads a night of 24 tasks, bench/workers.ts).
 * Under the runner's tick (1 s), so that each tick looks.
 */
const NO_SLOT_READ_MS = 900;

/** Who takes, and how. */
export interface QueueWorker {
  readonly name: string;
  /** The hosts it reaches; undefined: every host. */
  readonly hosts?: readonly string[];
  /** How many tasks it runs at once. */
  readonly capacity: number;
  /** How long a lease lasts without a heartbeat, ms. */
  readonly leaseMs: number;
  /** A task whose lease expired this many times is not put back again (default 3). */
  readonly maxAttempts?: number;
  /** Hears each hand-out's timings (`coffer worker --trace-queue`, bench/workers.ts). */
  readonly onTake?: (timing: TakeTiming) => void;
}

/**
 * One hand-out, timed (ms since the epoch on this machine's clock, for lining up with the
 * tasks' times; durations from the monotonic clock).
 */
export interface TakeTiming {
  /** When the runner asked (after its own bookkeeping). */
  readonly at: number;
  /** Slots it had free, tasks it took. */
  readonly free: number;
  readonly taken: number;
  /** From the call to the end of the first statement (BEGIN, the reads that need no lock, and the dispatch lock when it took it). */
  readonly readMs: number;
  /** From the call to the dispatch lock held (the reads, BEGIN, waiting for other workers' hand-outs). */
  readonly lockWaitMs: number;
  /** From the lock held to the commit returned (the work done under the lock). */
  readonly lockedMs: number;
  /** From the call to the commit returned. */
  readonly totalMs: number;
}

export class PostgresTaskQueue implements SharedDispatch {
  readonly capacity: number;
  readonly holder: string;
  readonly persistMs: number;
  /** true: take nothing (draining, stopping). */
  paused = false;
  private cluster: { reading: number; running: number; backups: readonly SharedBackup[] } | undefined;
  /** When a take with no free slot last read the database (Date.now()), and the runs it found that stop at their window's end. */
  private lastNoSlotRead = -Infinity;
  private stopAtWindowEnd: { id: string; windowEnd: number }[] = [];

  constructor(private readonly db: Kysely<StateSchema>, private readonly worker: QueueWorker) {
    if (!(worker.capacity >= 1 && Number.isInteger(worker.capacity))) throw new CofferError('E_USAGE', `a worker runs at least 1 task at once, not ${worker.capacity}`);
    this.capacity = worker.capacity;
    this.holder = worker.name;
    // A task's end is retried this long while the database is away (a restart, a failover):
    // the task stays held (its lease renewed once the database answers) until it is recorded.
    this.persistMs = 10 * worker.leaseMs;
  }

  load(): { reading: number; running: number; backups: readonly SharedBackup[] } | undefined {
    return this.cluster;
  }

  /** The backups running across the cluster, as the last heartbeat read them. */
  setClusterLoad(backups: readonly SharedBackup[]): void {
    this.cluster = { reading: backups.length, running: backups.length, backups };
  }

  async take(free: number): Promise<TakeResult> {
    const at = Date.now();
    const begun = performance.now();
    const marks = { read: begun, locked: begun };
    const report = (taken: number, lockedAt: number) => {
      const done = performance.now();
      this.worker.onTake?.({ at, free, taken, readMs: marks.read - begun, lockWaitMs: lockedAt - begun, lockedMs: done - lockedAt, totalMs: done - begun });
    };
    if (this.paused || free <= 0) {
      // No slot: no transaction, no lock; only a lease to put back (any worker does it, even a
      // full one), looked for at most every NO_SLOT_READ_MS: every end anywhere wakes every
      // worker, and a full one has nothing else to ask. The runs that stop at their window's
      // end are known in advance: the last read's list serves in between.
      if (at - this.lastNoSlotRead < NO_SLOT_READ_MS) return { start: [], windowClosed: [], endedRuns: [], stopAtWindowEnd: this.stopAtWindowEnd };
      this.lastNoSlotRead = at;
      const read = await this.readUnlocked(false);
      marks.read = performance.now();
      this.stopAtWindowEnd = read.stopAtWindowEnd;
      const endedRuns = read.expired ? await this.db.transaction().execute((trx) => this.reclaimExpired(trx)) : [];
      report(0, performance.now());
      return { start: [], windowClosed: [], endedRuns, stopAtWindowEnd: read.stopAtWindowEnd };
    }
    let outcome = await this.handOut(free, true, marks);
    this.stopAtWindowEnd = outcome.stopAtWindowEnd;
    let endedRuns: string[] = [];
    if (outcome.expired) {
      // A lease expired (the lock was not taken): put its tasks back in a transaction of their own, then hand out (they are queued again).
      endedRuns = await this.db.transaction().execute((trx) => this.reclaimExpired(trx));
      outcome = await this.handOut(free, false, marks);
    }
    report(outcome.start.length, outcome.locked ? marks.locked : performance.now());
    return { start: outcome.start, windowClosed: outcome.windowClosed, endedRuns, stopAtWindowEnd: outcome.stopAtWindowEnd };
  }

  /**
   * One hand-out transaction (see the module's comment): the first statement reads what needs
   * no lock and takes the dispatch lock only when there is work for this worker (and, when
   * `stopAtExpired`, no lease to put back first); the second reads the queued tasks with the
   * running backups; the third takes the chosen rows.
   */
  private async handOut(free: number, stopAtExpired: boolean, marks: { read: number; locked: number }): Promise<HandOut> {
    return this.db.transaction().execute(async (trx) => {
      const read = await this.readUnlocked(true, stopAtExpired, trx);
      marks.read = performance.now();
      marks.locked = marks.read;
      const nothing = { start: [], windowClosed: [], stopAtWindowEnd: read.stopAtWindowEnd, expired: read.expired, locked: read.locked };
      if (!read.locked) return nothing;
      const now = read.now;
      // Read after the lock (this statement sees what committed before it began: the hand-outs before this one, and every end).
      const queued = await trx.selectFrom('tasks').leftJoin('vm_state', 'vm_state.vm', 'tasks.vm').selectAll('tasks').select(['vm_state.last_success_at', 'vm_state.missed_window'])
        // The running backups on the first row only (on every row, 600 queued rows carried 600 copies: 2× the time under the lock).
        // With their reads as their workers last reported them (the latency guard; a report's time, or before any the start's, on the database's clock).
        .select(sql<RunningBackupRow[] | null>`CASE WHEN row_number() OVER (ORDER BY tasks.created_at, tasks.id) = 1 THEN (SELECT json_agg(json_build_array(r.id, r.host, r.datastore, r.repository, r.job, r.source_read_done, r.source_latency_ms, COALESCE(r.source_latency_at, r.started_at))) FROM tasks r WHERE r.status = 'running' AND r.kind = 'backup') END`.as('running_backups'))
        .where('tasks.status', '=', 'queued').orderBy('tasks.created_at').orderBy('tasks.id').limit(2000).execute();
      if (queued.length === 0) return nothing;
      const runningRows = queued[0]?.running_backups ?? [];
      const running = runningRows.map(([id, host, datastore, repository, job]) => ({ id, host, datastore, repository, job }));
      const hosts = this.worker.hosts === undefined ? undefined : new Set(this.worker.hosts);
      const others = queued.filter((row) => row.kind !== 'backup');
      const backups = queued.filter((row) => row.kind === 'backup' && (hosts === undefined || hosts.has(row.host ?? '')));
      const vmStates = new Map<string, { lastSuccess?: number; missedWindow: boolean }>();
      for (const r of backups) {
        if (r.vm !== null && r.missed_window !== null) vmStates.set(r.vm, { ...(r.last_success_at === null ? {} : { lastSuccess: Number(r.last_success_at) }), missedWindow: Number(r.missed_window) === 1 });
      }
      // The latency guard as published, over every worker's reports; a report older than a lease no longer holds (docs/scale.md).
      const guard = read.policy.latencyGuard;
      const { start, windowClosed } = chooseStarts(backups.map((row) => ({ ...placementOf(row), row, runId: row.run_id, vm: row.vm, datastore: row.datastore, notBefore: row.not_before === null ? null : Number(row.not_before) })),
        runningRows.map(activeBackup), {
          now: new Date(now), limits: read.policy.limits, windowEnds: read.windowEnds, vmStates,
          ...(guard === null ? {} : { latencyGuard: { thresholdMs: guard.thresholdMs, staleMs: this.worker.leaseMs } }),
        });
      const chosen = [...others, ...start.map((t) => t.row)].slice(0, free).map(taskRow);
      // The start time is read after the count, by the update itself: a task that ended
      // (committed) while this transaction waited for the lock has an end before it, never after.
      // Only rows still queued are taken (one cancelled since the read is not): what the update returns is what was handed out.
      let startedAt = now;
      let taken: Selectable<TaskTable>[] = [];
      if (chosen.length > 0) {
        const updated = await trx.updateTable('tasks')
          .set({ status: 'running', worker: this.worker.name, lease_until: sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint + ${this.worker.leaseMs}`, started_at: sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`, cancel_requested: 0, ...NO_READS })
          .where('id', 'in', chosen.map((r) => r.id)).where('status', '=', 'queued').returning(['id', 'started_at']).execute();
        startedAt = Number(updated[0]?.started_at ?? now);
        const ids = new Set(updated.map((r) => r.id));
        taken = chosen.filter((r) => ids.has(r.id));
      }
      const clusterBackups = [...running, ...taken.filter((r) => r.kind === 'backup')].map((r) => ({ id: r.id, host: r.host ?? '', repository: r.repository ?? '' }));
      this.cluster = { reading: running.length + taken.length, running: running.length + taken.length, backups: clusterBackups };
      return {
        ...nothing,
        start: taken.map((row) => ({ ...row, status: 'running', worker: this.worker.name, lease_until: startedAt + this.worker.leaseMs, started_at: startedAt, cancel_requested: 0, ...NO_READS })),
        windowClosed: windowClosed.map((t) => taskRow(t.row)),
      };
    });
  }

  /** When this worker reached the database again after losing it (performance.now()); -Infinity: never lost it. */
  private databaseBackAt = -Infinity;
  private databaseLost = false;

  private async reachingDatabase<T>(read: () => Promise<T>): Promise<T> {
    try {
      const value = await read();
      if (this.databaseLost) this.databaseBackAt = performance.now();
      this.databaseLost = false;
      return value;
    } catch (error) {
      this.databaseLost = true;
      throw error;
    }
  }

  /**
   * The reads that need no lock, in one statement: has a running task's lease expired (on the
   * database's clock); is a task queued that this worker could take (another kind than backup,
   * or a backup of a host it declares); the published policy; the running runs' window ends.
   * With `lock` (inside the hand-out's transaction), the same statement then takes the
   * dispatch lock if there is work (and no expired lease, when `stopAtExpired`) and reads the
   * database's clock after it: the lock costs no round trip of its own, and a worker with
   * nothing to take never queues on it.
   */
  private async readUnlocked(lock: boolean, stopAtExpired = true, trx: Kysely<StateSchema> = this.db): Promise<UnlockedRead> {
    const hosts = this.worker.hosts;
    const mine = hosts === undefined ? sql`TRUE` : sql`(kind <> 'backup' OR host = ANY(${[...hosts]}::text[]))`;
    // Back from losing the database (a failover keeps the server's start time): the live workers renew first.
    const mayReclaim = performance.now() - this.databaseBackAt >= this.worker.leaseMs ? sql`TRUE` : sql`FALSE`;
    const takeLock = !lock ? sql`FALSE` : stopAtExpired ? sql`(r.work AND NOT r.expired)` : sql`r.work`;
    // OFFSET 0 keeps the inner query apart: its reads are done before the lock is asked for, the clock read after it is held.
    const { rows: [row] } = await this.reachingDatabase(() => sql<{ expired: boolean; work: boolean; policy: [string, string][] | null; windows: [string, number | string, number][] | null; locked: boolean; now: string }>`SELECT r.*, l.locked, (extract(epoch from clock_timestamp()) * 1000)::bigint AS now FROM (SELECT
      (${mayReclaim} AND EXISTS (SELECT 1 FROM tasks WHERE status = 'running' AND ${leaseEnd(this.worker.leaseMs)} < (extract(epoch from clock_timestamp()) * 1000)::bigint)) AS expired,
      EXISTS (SELECT 1 FROM tasks WHERE status = 'queued' AND ${mine}) AS work,
      (SELECT json_agg(json_build_array(key, value)) FROM cluster_policy) AS policy,
      (SELECT json_agg(json_build_array(id, window_end, cancel_at_window_end)) FROM runs WHERE status = 'running' AND window_end IS NOT NULL) AS windows
      OFFSET 0) r CROSS JOIN LATERAL (SELECT CASE WHEN ${takeLock} THEN pg_advisory_xact_lock(${DISPATCH_LOCK_KEY}) IS NOT NULL ELSE FALSE END AS locked OFFSET 0) l`.execute(trx));
    const windows = row?.windows ?? [];
    return {
      expired: row?.expired === true, work: row?.work === true, locked: row?.locked === true, now: Number(row?.now),
      policy: parsePolicy((row?.policy ?? []).map(([key, value]) => ({ key, value }))),
      windowEnds: new Map(windows.map(([id, end]) => [id, Number(end)])),
      stopAtWindowEnd: windows.filter(([, , cancel]) => Number(cancel) === 1).map(([id, end]) => ({ id, windowEnd: Number(end) })),
    };
  }

  /**
   * Puts back (or gives up on) the tasks whose lease expired; returns the runs to check for
   * their end. Needs no dispatch lock: each expired row is locked by the one transaction that
   * puts it back (SKIP LOCKED: another worker doing the same passes over it), and a put-back
   * task only frees a slot (a concurrent hand-out that still counts it errs on the safe side).
   */
  private async reclaimExpired(trx: Transaction<StateSchema>): Promise<string[]> {
    const now = await databaseNow(trx);
    const expired = await trx.selectFrom('tasks').select(['id', 'run_id', 'attempt', 'worker']).where('status', '=', 'running').where(leaseEnd(this.worker.leaseMs), '<', now).forUpdate().skipLocked().execute();
    const endedRuns: string[] = [];
    for (const row of expired) {
      const attempt = Number(row.attempt);
      const lost = `the lease of worker ${row.worker ?? '?'} expired (killed, or cut off from the database)`;
      if (attempt >= (this.worker.maxAttempts ?? 3)) {
        await trx.updateTable('tasks').set({ status: 'interrupted', ended_at: now, error_code: 'E_LEASE_EXPIRED', error_message: `${lost}; attempt ${attempt} was the last` }).where('id', '=', row.id).execute();
        if (row.run_id !== null) endedRuns.push(row.run_id);
        await appendLog(trx, row.id, now, 'error', `interrupted: ${lost}; attempt ${attempt} was the last`);
      } else {
        await trx.updateTable('tasks').set({ status: 'queued', worker: null, lease_until: null, started_at: null, progress: 0, attempt: attempt + 1, cancel_requested: 0 }).where('id', '=', row.id).execute();
        await appendLog(trx, row.id, now, 'warning', `${lost}: back in the queue for attempt ${attempt + 1}`);
      }
    }
    return endedRuns;
  }
}

/**
 * When a running task's lease ends, on the database's clock (ms): `lease_until`, but never
 * sooner than a lease after the database server started. A worker cannot renew its leases
 * (nor record a task's end) while the database is down: after a restart longer than a lease
 * every lease would have run out at once, and the first hand-out would take the tasks of live
 * workers, which would be running them, or had finished them and were about to record it (a
 * second backup of the VM). A lease gives every live worker time to renew (a heartbeat comes
 * every third of a lease) and to record what ended; a dead worker's tasks come back that much
 * later. `leaseMs` is the taking worker's own lease (workers of one site share it).
 */
function leaseEnd(leaseMs: number) {
  return sql<number>`GREATEST(lease_until, (extract(epoch from pg_postmaster_start_time()) * 1000)::bigint + ${leaseMs})`;
}

async function appendLog(trx: Transaction<StateSchema>, taskId: string, now: number, level: string, line: string): Promise<void> {
  const last = await trx.selectFrom('task_log').select((eb) => eb.fn.max('seq').as('seq')).where('task_id', '=', taskId).executeTakeFirst();
  await trx.insertInto('task_log').values({ task_id: taskId, seq: Number(last?.seq ?? 0) + 1, at: now, level, line }).execute();
}

/** What {@link PostgresTaskQueue.take} gives the runner (SharedDispatch). */
type TakeResult = Awaited<ReturnType<SharedDispatch['take']>>;

interface UnlockedRead {
  readonly expired: boolean;
  readonly work: boolean;
  /** The dispatch lock is held (until the transaction ends). */
  readonly locked: boolean;
  /** The database's clock, ms, read after the lock when it was taken. */
  readonly now: number;
  readonly policy: ClusterPolicy;
  readonly windowEnds: Map<string, number>;
  readonly stopAtWindowEnd: { id: string; windowEnd: number }[];
}

interface HandOut extends Omit<TakeResult, 'endedRuns'> {
  readonly expired: boolean;
  readonly locked: boolean;
}

/** The task's own columns, without what the hand-out's query joined. */
function taskRow(row: Selectable<TaskTable> & { last_success_at?: unknown; missed_window?: unknown; running_backups?: unknown }): Selectable<TaskTable> {
  const { last_success_at: _lastSuccess, missed_window: _missed, running_backups: _running, ...task } = row;
  return task;
}

/** A task just taken has reported nothing of its reads yet (an earlier attempt's reports, if any, are cleared). */
const NO_READS = { source_latency_ms: null, source_latency_at: null, source_read_done: 0 } as const;

/** A running backup as the hand-out's query reads it: id, host, datastore, repository, job, source_read_done, source_latency_ms, and when that was reported (or the start). */
type RunningBackupRow = [string, string | null, string | null, string | null, string | null, number, number | null, number | string | null];

/** A running backup as the decision sees it: its keys for the limits, and its reads for the latency guard. */
function activeBackup([id, host, datastore, repository, job, readDone, latencyMs, reportedAt]: RunningBackupRow): ActiveTask {
  return {
    ...placementOf({ id, host, datastore, repository, job }),
    reading: Number(readDone) !== 1,
    latencyMs: latencyMs === null ? undefined : Number(latencyMs),
    ...(reportedAt === null ? {} : { reportedAt: Number(reportedAt) }),
  };
}

/** A task's keys for the limits, as the single-process runner counts them (no job: the job `''`). */
function placementOf(row: { id: string; host: string | null; datastore: string | null; repository: string | null; job: string | null }): { id: string; host: string; datastore?: string; repository: string; job: string } {
  return { id: row.id, host: row.host ?? '', ...(row.datastore === null ? {} : { datastore: row.datastore }), repository: row.repository ?? '', job: row.job ?? '' };
}
