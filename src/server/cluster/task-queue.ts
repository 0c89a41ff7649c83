/**
 * The task queue shared by every worker, in PostgreSQL: the `tasks` table itself (queued rows
 * are the queue). A hand-out (`take`) is:
 *
 * 1. reads that need no lock, in one statement: has a running task's lease
 *    expired; is a task queued that this worker could take (another kind, or a backup of a host
 *    it declares); the published limits (cluster-policy.ts); the running runs' window ends.
 *    A worker with no free slot, or with nothing queued for it, stops here: it never queues on
 *    the dispatch lock (every end wakes every worker: queue-wakeups.ts);
 * 2. if a lease expired: the tasks put back (`queued` again with attempt + 1, or `interrupted`,
 *    E_LEASE_EXPIRED, after `maxAttempts`) in a transaction of their own, each row locked
 *    `FOR UPDATE SKIP LOCKED` so that two workers never put one back twice;
 * 3. one transaction that takes the dispatch lock (`pg_advisory_xact_lock`, released at
 *    commit): hand-outs run one at a time across the cluster, so two workers can never both
 *    take the last slot of a limit. Under the lock, four statements, each seeing every commit
 *    before it began (READ COMMITTED): the lock (with the database's clock); the running
 *    backups, counted per layer (global, host, datastore, repository, job) across every
 *    worker; the queued tasks with their VMs' last success, `FOR UPDATE SKIP LOCKED` (rows
 *    another transaction holds are passed over, never waited for); the update of the chosen
 *    rows to `running`, held by this worker with a lease (`worker`, `started_at` and
 *    `lease_until` = now + lease, on the database's clock read by that statement, after the
 *    count), and the commit. Between the second and the third, the same decision as the
 *    single-process runner (`chooseStarts`: the limits, retries not yet due, closed windows,
 *    oldest last success first), restricted to the hosts this worker declares.
 *
 * The limits are read just before the lock, not under it: a limit a server publishes while a
 * hand-out runs applies from the next hand-out, as it would had it come a moment later. The
 * counting and the taking, which make a limit hold, stay under the lock.
 *
 * Tasks of other kinds than backup (restore, verify…) have no host: any worker takes them,
 * outside the limits, as the single-process runner does. The latency guard is not applied
 * across workers (a worker does not know another's read latency).
 */
import { performance } from 'node:perf_hooks';
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { CofferError } from '../../errors/index.js';
import type { StateSchema } from '../state/index.js';
import type { TaskTable } from '../state/schema.js';
import { chooseStarts, type SharedDispatch } from '../tasks/index.js';
import { parsePolicy, type ClusterPolicy } from './cluster-policy.js';
import { databaseNow } from './database-clock.js';

/** The advisory lock key of the hand-out (an arbitrary constant: "coff" and 10, the issue). */
export const DISPATCH_LOCK_KEY = 0x636f6666_0a;

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
  /** From the call to the end of the reads that need no lock (leases, queued work, policy, windows). */
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
  private cluster: { reading: number; running: number } | undefined;

  constructor(private readonly db: Kysely<StateSchema>, private readonly worker: QueueWorker) {
    if (!(worker.capacity >= 1 && Number.isInteger(worker.capacity))) throw new CofferError('E_USAGE', `a worker runs at least 1 task at once, not ${worker.capacity}`);
    this.capacity = worker.capacity;
    this.holder = worker.name;
    // A task's end is retried this long while the database is away (a restart, a failover):
    // the task stays held (its lease renewed once the database answers) until it is recorded.
    this.persistMs = 10 * worker.leaseMs;
  }

  load(): { reading: number; running: number } | undefined {
    return this.cluster;
  }

  /** The backups running across the cluster, as the last heartbeat counted them. */
  setClusterLoad(running: number): void {
    this.cluster = { reading: running, running };
  }

  async take(free: number): Promise<{ start: Selectable<TaskTable>[]; windowClosed: Selectable<TaskTable>[]; endedRuns: string[] }> {
    const at = Date.now();
    const begun = performance.now();
    let read = begun;
    const report = (taken: number, locked: number) => {
      const done = performance.now();
      this.worker.onTake?.({ at, free, taken, readMs: read - begun, lockWaitMs: locked - begun, lockedMs: done - locked, totalMs: done - begun });
    };
    const wants = !this.paused && free > 0;
    // Before the lock, one statement: what needs no lock (see the module's comment).
    const { expired: anyExpired, work, policy, windowEnds } = await this.reachingDatabase(() => this.readUnlocked());
    read = performance.now();
    // Back from losing the database (a failover keeps the server's start time): the live workers renew first.
    const expired = anyExpired && read - this.databaseBackAt >= this.worker.leaseMs;
    const endedRuns = expired ? await this.db.transaction().execute((trx) => this.reclaimExpired(trx)) : [];
    // Put back tasks are queued: take them too (this process has room) even if none was queued before.
    if (!wants || (!work && !expired)) {
      report(0, performance.now());
      return { start: [], windowClosed: [], endedRuns };
    }
    let locked = begun;
    const result = await this.db.transaction().execute(async (trx) => {
      const { rows: [clock] } = await sql<{ now: string }>`SELECT pg_advisory_xact_lock(${DISPATCH_LOCK_KEY}), (extract(epoch from clock_timestamp()) * 1000)::bigint AS now`.execute(trx);
      locked = performance.now();
      const now = Number(clock?.now);
      // Read after the lock (each statement sees what committed before it began): the hand-outs before this one, and every end.
      const running = await trx.selectFrom('tasks').select(['id', 'host', 'datastore', 'repository', 'job']).where('status', '=', 'running').where('kind', '=', 'backup').execute();
      const queued = await trx.selectFrom('tasks').leftJoin('vm_state', 'vm_state.vm', 'tasks.vm').selectAll('tasks').select(['vm_state.last_success_at', 'vm_state.missed_window'])
        .where('tasks.status', '=', 'queued').orderBy('tasks.created_at').orderBy('tasks.id').limit(2000).forUpdate(['tasks']).skipLocked().execute();
      const hosts = this.worker.hosts === undefined ? undefined : new Set(this.worker.hosts);
      const others = queued.filter((row) => row.kind !== 'backup');
      const backups = queued.filter((row) => row.kind === 'backup' && (hosts === undefined || hosts.has(row.host ?? '')));
      const vmStates = new Map<string, { lastSuccess?: number; missedWindow: boolean }>();
      for (const r of backups) {
        if (r.vm !== null && r.missed_window !== null) vmStates.set(r.vm, { ...(r.last_success_at === null ? {} : { lastSuccess: Number(r.last_success_at) }), missedWindow: Number(r.missed_window) === 1 });
      }
      const { start, windowClosed } = chooseStarts(backups.map((row) => ({ ...placementOf(row), row, runId: row.run_id, vm: row.vm, datastore: row.datastore, notBefore: row.not_before === null ? null : Number(row.not_before) })),
        running.map((r) => ({ ...placementOf(r), reading: true, latencyMs: undefined })), { now: new Date(now), limits: policy.limits, windowEnds, vmStates });
      const taken = [...others, ...start.map((t) => t.row)].slice(0, free).map(taskRow);
      // The start time is read after the count, by the update itself: a task that ended
      // (committed) while this transaction waited for the lock has an end before it, never after.
      let startedAt = now;
      if (taken.length > 0) {
        const updated = await trx.updateTable('tasks')
          .set({ status: 'running', worker: this.worker.name, lease_until: sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint + ${this.worker.leaseMs}`, started_at: sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint`, cancel_requested: 0 })
          .where('id', 'in', taken.map((r) => r.id)).returning(['started_at']).execute();
        startedAt = Number(updated[0]?.started_at ?? now);
      }
      this.cluster = { reading: running.length + taken.length, running: running.length + taken.length };
      return {
        start: taken.map((row) => ({ ...row, status: 'running', worker: this.worker.name, lease_until: startedAt + this.worker.leaseMs, started_at: startedAt, cancel_requested: 0 })),
        windowClosed: windowClosed.map((t) => taskRow(t.row)),
        endedRuns,
      };
    });
    report(result.start.length, locked);
    return result;
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
   */
  private async readUnlocked(): Promise<{ expired: boolean; work: boolean; policy: ClusterPolicy; windowEnds: Map<string, number> }> {
    const hosts = this.worker.hosts;
    const mine = hosts === undefined ? sql`TRUE` : sql`(kind <> 'backup' OR host = ANY(${[...hosts]}::text[]))`;
    const { rows: [row] } = await sql<{ expired: boolean; work: boolean; policy: [string, string][] | null; windows: [string, number | string][] | null }>`SELECT
      EXISTS (SELECT 1 FROM tasks WHERE status = 'running' AND ${leaseEnd(this.worker.leaseMs)} < (extract(epoch from clock_timestamp()) * 1000)::bigint) AS expired,
      EXISTS (SELECT 1 FROM tasks WHERE status = 'queued' AND ${mine}) AS work,
      (SELECT json_agg(json_build_array(key, value)) FROM cluster_policy) AS policy,
      (SELECT json_agg(json_build_array(id, window_end)) FROM runs WHERE status = 'running' AND window_end IS NOT NULL) AS windows`.execute(this.db);
    return {
      expired: row?.expired === true, work: row?.work === true,
      policy: parsePolicy((row?.policy ?? []).map(([key, value]) => ({ key, value }))),
      windowEnds: new Map((row?.windows ?? []).map(([id, end]) => [id, Number(end)])),
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

/** The task's own columns, without what the hand-out's query joined. */
function taskRow(row: Selectable<TaskTable> & { last_success_at?: unknown; missed_window?: unknown }): Selectable<TaskTable> {
  const { last_success_at: _lastSuccess, missed_window: _missed, ...task } = row;
  return task;
}

/** A task's keys for the limits, as the single-process runner counts them (no job: the job `''`). */
function placementOf(row: { id: string; host: string | null; datastore: string | null; repository: string | null; job: string | null }): { id: string; host: string; datastore?: string; repository: string; job: string } {
  return { id: row.id, host: row.host ?? '', ...(row.datastore === null ? {} : { datastore: row.datastore }), repository: row.repository ?? '', job: row.job ?? '' };
}
