/**
 * The task queue shared by every worker, in PostgreSQL: the `tasks` table itself (queued rows
 * are the queue). A worker takes tasks in one transaction that
 *
 * 1. takes the dispatch lock (`pg_advisory_xact_lock`, released at commit): hand-outs run one
 *    at a time across the cluster, so two workers can never both take the last slot of a limit;
 * 2. puts back the tasks whose lease expired (their worker was killed or cut off): `queued`
 *    again with attempt + 1, or `interrupted` (E_LEASE_EXPIRED) after `maxAttempts`;
 * 3. reads the published limits (cluster-policy.ts), counts the running backups per layer
 *    (global, host, datastore, repository, job) across every worker, and selects the queued
 *    tasks `FOR UPDATE SKIP LOCKED` (rows another transaction holds are passed over, never
 *    waited for);
 * 4. lets the same decision as the single-process runner choose (`chooseStarts`: the limits,
 *    retries not yet due, closed windows, oldest last success first), restricted to the hosts
 *    this worker declares;
 * 5. marks what it took `running`, held by this worker with a lease (`worker`, `lease_until` =
 *    now + lease, the database's clock), and commits.
 *
 * Tasks of other kinds than backup (restore, verify…) have no host: any worker takes them,
 * outside the limits, as the single-process runner does. The latency guard is not applied
 * across workers (a worker does not know another's read latency).
 */
import { sql, type Kysely, type Selectable, type Transaction } from 'kysely';
import { CofferError } from '../../errors/index.js';
import type { StateSchema } from '../state/index.js';
import type { TaskTable } from '../state/schema.js';
import { chooseStarts, type SharedDispatch } from '../tasks/index.js';
import { readPolicy } from './cluster-policy.js';
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
    this.persistMs = worker.leaseMs;
  }

  load(): { reading: number; running: number } | undefined {
    return this.cluster;
  }

  /** The backups running across the cluster, as the last heartbeat counted them. */
  setClusterLoad(running: number): void {
    this.cluster = { reading: running, running };
  }

  async take(free: number): Promise<{ start: Selectable<TaskTable>[]; windowClosed: Selectable<TaskTable>[]; endedRuns: string[] }> {
    return this.db.transaction().execute(async (trx) => {
      await sql`SELECT pg_advisory_xact_lock(${DISPATCH_LOCK_KEY})`.execute(trx);
      const now = await databaseNow(trx);
      const endedRuns = await this.reclaimExpired(trx, now);
      if (this.paused || free <= 0) return { start: [], windowClosed: [], endedRuns };
      const policy = await readPolicy(trx);
      const running = await trx.selectFrom('tasks').select(['id', 'host', 'datastore', 'repository', 'job']).where('status', '=', 'running').where('kind', '=', 'backup').execute();
      const queued = await trx.selectFrom('tasks').selectAll().where('status', '=', 'queued').orderBy('created_at').orderBy('id').limit(2000).forUpdate().skipLocked().execute();
      const hosts = this.worker.hosts === undefined ? undefined : new Set(this.worker.hosts);
      const others = queued.filter((row) => row.kind !== 'backup');
      const backups = queued.filter((row) => row.kind === 'backup' && (hosts === undefined || hosts.has(row.host ?? '')));
      const windowEnds = new Map<string, number>();
      for (const run of await trx.selectFrom('runs').select(['id', 'window_end']).where('status', '=', 'running').where('window_end', 'is not', null).execute()) windowEnds.set(run.id, Number(run.window_end));
      const vmStates = await vmStatesOf(trx, backups.flatMap((r) => (r.vm === null ? [] : [r.vm])));
      const { start, windowClosed } = chooseStarts(backups.map((row) => ({ ...placementOf(row), row, runId: row.run_id, vm: row.vm, datastore: row.datastore, notBefore: row.not_before === null ? null : Number(row.not_before) })),
        running.map((r) => ({ ...placementOf(r), reading: true, latencyMs: undefined })), { now: new Date(now), limits: policy.limits, windowEnds, vmStates });
      const taken = [...others, ...start.map((t) => t.row)].slice(0, free);
      // The start time is read after the count: a task that ended (committed) while this
      // transaction waited for the lock has an end before it, never after.
      const startedAt = taken.length === 0 ? now : await databaseNow(trx);
      if (taken.length > 0) {
        await trx.updateTable('tasks').set({ status: 'running', worker: this.worker.name, lease_until: startedAt + this.worker.leaseMs, started_at: startedAt, cancel_requested: 0 })
          .where('id', 'in', taken.map((r) => r.id)).execute();
      }
      this.cluster = { reading: running.length + taken.length, running: running.length + taken.length };
      return {
        start: taken.map((row) => ({ ...row, status: 'running', worker: this.worker.name, lease_until: startedAt + this.worker.leaseMs, started_at: startedAt })),
        windowClosed: windowClosed.map((t) => t.row),
        endedRuns,
      };
    });
  }

  /** Puts back (or gives up on) the tasks whose lease expired; returns the runs to check for their end. */
  private async reclaimExpired(trx: Transaction<StateSchema>, now: number): Promise<string[]> {
    const expired = await trx.selectFrom('tasks').select(['id', 'run_id', 'attempt', 'worker']).where('status', '=', 'running').where('lease_until', '<', now).forUpdate().skipLocked().execute();
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

async function appendLog(trx: Transaction<StateSchema>, taskId: string, now: number, level: string, line: string): Promise<void> {
  const last = await trx.selectFrom('task_log').select((eb) => eb.fn.max('seq').as('seq')).where('task_id', '=', taskId).executeTakeFirst();
  await trx.insertInto('task_log').values({ task_id: taskId, seq: Number(last?.seq ?? 0) + 1, at: now, level, line }).execute();
}

async function vmStatesOf(trx: Transaction<StateSchema>, vms: readonly string[]): Promise<Map<string, { lastSuccess?: number; missedWindow: boolean }>> {
  const out = new Map<string, { lastSuccess?: number; missedWindow: boolean }>();
  if (vms.length === 0) return out;
  for (const r of await trx.selectFrom('vm_state').selectAll().where('vm', 'in', [...new Set(vms)]).execute()) {
    out.set(r.vm, { ...(r.last_success_at === null ? {} : { lastSuccess: Number(r.last_success_at) }), missedWindow: Number(r.missed_window) === 1 });
  }
  return out;
}

/** A task's keys for the limits, as the single-process runner counts them (no job: the job `''`). */
function placementOf(row: { id: string; host: string | null; datastore: string | null; repository: string | null; job: string | null }): { id: string; host: string; datastore?: string; repository: string; job: string } {
  return { id: row.id, host: row.host ?? '', ...(row.datastore === null ? {} : { datastore: row.datastore }), repository: row.repository ?? '', job: row.job ?? '' };
}
