/**
 * The tasks' and runs' rows in the state database: every read and write of the `runs`,
 * `tasks`, `task_log` and `vm_state` tables goes through here (Kysely, so PostgreSQL fits
 * later). Each method is one statement or one transaction: a crash leaves whole rows.
 * Times are milliseconds since the epoch in the database and ISO 8601 outside.
 */
import { sql, type Kysely, type Selectable } from 'kysely';
import type { VmBackupResult } from '../../backup/index.js';
import { databaseClockMs, decodeCursor, encodeCursor } from '../state/index.js';
import type { RunTable, StateSchema, TaskTable } from '../state/schema.js';
import type { Page, RunInfo, RunReason, RunStatus, TaskInfo, TaskKind, TaskLogLine, TaskReport, TaskStatus } from './task-types.js';

/** The columns of a new task. */
export interface NewTask {
  id: string;
  runId: string | null;
  kind: TaskKind;
  owner: string;
  vm?: string;
  host?: string;
  datastore?: string;
  repository?: string;
  job?: string;
  spec: unknown;
  attempt: number;
  retryOf?: string;
  notBefore?: number;
}

/** The columns of a new run. */
export interface NewRun {
  id: string;
  job: string | null;
  reason: RunReason;
  status: RunStatus;
  owner: string;
  firing?: number;
  windowEnd?: number;
  cancelAtWindowEnd?: boolean;
  vms: string[];
  detail?: string;
}

function newTaskRow(task: NewTask, now: number) {
  return {
    id: task.id, run_id: task.runId, kind: task.kind, owner: task.owner, status: 'queued',
    vm: task.vm ?? null, host: task.host ?? null, datastore: task.datastore ?? null, repository: task.repository ?? null, job: task.job ?? null,
    spec: JSON.stringify(task.spec), attempt: task.attempt, retry_of: task.retryOf ?? null, not_before: task.notBefore ?? null,
    progress: 0, created_at: now, started_at: null, ended_at: null, error_code: null, error_message: null, result: null,
  } as const;
}

/** Filters of {@link TaskStore.listTasks}; `cursor` (keyset) or `after` (an offset) is where the previous page ended. */
export interface TaskFilter {
  status?: TaskStatus;
  runId?: string;
  vm?: string;
  job?: string;
  limit?: number;
  after?: number;
  cursor?: string;
}

/** A window of end times (ms, [from, to)) and the last row already read (its end and id). */
export interface EndedWindow {
  from: number;
  to: number;
  after?: { at: number; id: string };
}

/** Filters of {@link TaskStore.listRuns}. */
export interface RunFilter {
  job?: string;
  status?: RunStatus;
  limit?: number;
  after?: number;
  cursor?: string;
}

export class TaskStore {
  /** `holder`: a worker's name (scale-out): it ends and reports only on the tasks it holds (or queued ones). */
  constructor(private readonly db: Kysely<StateSchema>, private readonly holder?: string) {}

  /** Asks the worker running a task to cancel it (its heartbeat reads the flag). Returns whether it was running. */
  async requestCancel(id: string): Promise<boolean> {
    const changed = await this.db.updateTable('tasks').set({ cancel_requested: 1 }).where('id', '=', id).where('status', '=', 'running').executeTakeFirst();
    return Number(changed.numUpdatedRows) > 0;
  }

  async insertTask(task: NewTask, now: number): Promise<void> {
    await this.db.insertInto('tasks').values(newTaskRow(task, now)).execute();
  }

  /**
   * A run and its tasks in one transaction, the tasks in multi-row inserts: a run of 600 VMs
   * is a few statements instead of 601, and a worker never sees half a run (the queue delay of
   * a run's first tasks counts from their creation; bench/workers.ts).
   */
  async insertRunWithTasks(run: NewRun, tasks: readonly NewTask[], now: number): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await new TaskStore(trx, this.holder).insertRun(run, now);
      // 19 columns a row: 500 rows stay far below both engines' limit on bound parameters.
      for (let i = 0; i < tasks.length; i += 500) await trx.insertInto('tasks').values(tasks.slice(i, i + 500).map((task) => newTaskRow(task, now))).execute();
    });
  }

  async taskRow(id: string): Promise<Selectable<TaskTable> | undefined> {
    return this.db.selectFrom('tasks').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async getTask(id: string): Promise<TaskInfo | undefined> {
    const row = await this.taskRow(id);
    return row === undefined ? undefined : taskInfo(row);
  }

  /** Tasks newest first, `limit` (default 50, at most 1000) per page. */
  async listTasks(filter: TaskFilter = {}): Promise<Page<TaskInfo>> {
    const limit = Math.min(Math.max(1, filter.limit ?? 50), 1000);
    let query = this.db.selectFrom('tasks').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1);
    if (filter.cursor !== undefined) {
      const at = decodeCursor(filter.cursor);
      query = query.where((eb) => eb(eb.refTuple('created_at', 'id'), '<', eb.tuple(at.time, at.id)));
    } else if ((filter.after ?? 0) > 0) {
      query = query.offset(filter.after ?? 0);
    }
    if (filter.status !== undefined) query = query.where('status', '=', filter.status);
    if (filter.runId !== undefined) query = query.where('run_id', '=', filter.runId);
    if (filter.vm !== undefined) query = query.where('vm', '=', filter.vm);
    if (filter.job !== undefined) query = query.where('job', '=', filter.job);
    const rows = await query.execute();
    return pageOfRows(rows, limit, filter, taskInfo);
  }

  /** How many tasks match the filter (`limit` and `after` ignored). */
  async countTasks(filter: TaskFilter = {}): Promise<number> {
    let query = this.db.selectFrom('tasks').select((eb) => eb.fn.countAll<number>().as('n'));
    if (filter.status !== undefined) query = query.where('status', '=', filter.status);
    if (filter.runId !== undefined) query = query.where('run_id', '=', filter.runId);
    if (filter.vm !== undefined) query = query.where('vm', '=', filter.vm);
    if (filter.job !== undefined) query = query.where('job', '=', filter.job);
    return Number((await query.executeTakeFirstOrThrow()).n);
  }

  /** Rows in a state, oldest first (the dispatcher's and the recovery's view). */
  async tasksIn(status: TaskStatus): Promise<Selectable<TaskTable>[]> {
    return this.db.selectFrom('tasks').selectAll().where('status', '=', status).orderBy('created_at').orderBy('id').execute();
  }

  async markRunning(id: string, now: number): Promise<void> {
    await this.db.updateTable('tasks').set({ status: 'running', started_at: now }).where('id', '=', id).execute();
  }

  /** A running task's report so far (an instant recovery's NBD URIs while it serves). */
  async setReport(id: string, report: TaskReport): Promise<void> {
    let query = this.db.updateTable('tasks').set({ result: JSON.stringify(report) }).where('id', '=', id).where('status', '=', 'running');
    if (this.holder !== undefined) query = query.where('worker', '=', this.holder);
    await query.execute();
  }

  /**
   * A running task's progress (0..1) and, for a backup, its reads (`reads`): the mean source
   * read latency of this report (written with the database's clock when there is one; the last
   * one stays otherwise), and whether it has read every byte. Other workers' hand-outs hold its
   * datastore by them (the latency guard, migration 33).
   */
  async setProgress(id: string, progress: number, reads?: { latencyMs?: number | undefined; done: boolean }): Promise<void> {
    let query = this.db.updateTable('tasks').set({
      progress,
      ...(reads?.latencyMs === undefined ? {} : { source_latency_ms: reads.latencyMs, source_latency_at: databaseClockMs(this.db as unknown as Kysely<unknown>) }),
      ...(reads?.done === true ? { source_read_done: 1 } : {}),
    }).where('id', '=', id).where('status', '=', 'running');
    if (this.holder !== undefined) query = query.where('worker', '=', this.holder);
    await query.execute();
  }

  /**
   * Ends a task once: a task already in a final state is left as it is. Returns whether it
   * changed. Without `result`, a report set while it ran ({@link setReport}) stays.
   */
  async finish(id: string, end: { status: TaskStatus; now: number; error?: { code: string; message: string }; result?: VmBackupResult | TaskReport }): Promise<boolean> {
    let query = this.db.updateTable('tasks')
      .set({
        status: end.status, ended_at: end.now, ...(end.status === 'succeeded' || end.status === 'warning' ? { progress: 1 } : {}),
        error_code: end.error?.code ?? null, error_message: end.error?.message ?? null, ...(end.result === undefined ? {} : { result: JSON.stringify(end.result) }),
      })
      .where('id', '=', id).where('status', 'in', ['queued', 'running']);
    const holder = this.holder;
    if (holder !== undefined) query = query.where((eb) => eb.or([eb('status', '=', 'queued'), eb('worker', '=', holder)]));
    const changed = await query.executeTakeFirst();
    return Number(changed.numUpdatedRows) > 0;
  }

  /** Appends of one task run one after another (sequence numbers are max + 1; a pool of connections would race). */
  private readonly logChains = new Map<string, Promise<unknown>>();

  appendLog(taskId: string, level: TaskLogLine['level'], text: string, now: number): Promise<TaskLogLine> {
    const previous = this.logChains.get(taskId) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.appendLogNow(taskId, level, text, now));
    this.logChains.set(taskId, next);
    void next.finally(() => {
      if (this.logChains.get(taskId) === next) this.logChains.delete(taskId);
    }).catch(() => undefined);
    return next;
  }

  private async appendLogNow(taskId: string, level: TaskLogLine['level'], text: string, now: number): Promise<TaskLogLine> {
    // Tool output may hold NUL bytes, which PostgreSQL text refuses.
    const line = text.replace(/\u0000/g, '\uFFFD');
    return this.db.transaction().execute(async (trx) => {
      const last = await trx.selectFrom('task_log').select((eb) => eb.fn.max('seq').as('seq')).where('task_id', '=', taskId).executeTakeFirst();
      const seq = Number(last?.seq ?? 0) + 1;
      await trx.insertInto('task_log').values({ task_id: taskId, seq, at: now, level, line }).execute();
      return { seq, at: new Date(now).toISOString(), level, line };
    });
  }

  /** Log lines after `after` (a sequence number; 0 from the start), `limit` (default 100, at most 1000) at a time. */
  async log(taskId: string, options: { after?: number; limit?: number } = {}): Promise<Page<TaskLogLine>> {
    const limit = Math.min(Math.max(1, options.limit ?? 100), 1000);
    const rows = await this.db.selectFrom('task_log').selectAll().where('task_id', '=', taskId).where('seq', '>', options.after ?? 0).orderBy('seq').limit(limit + 1).execute();
    const items = rows.slice(0, limit).map((r) => ({ seq: Number(r.seq), at: new Date(Number(r.at)).toISOString(), level: r.level as TaskLogLine['level'], line: r.line }));
    const last = items.at(-1);
    return rows.length > limit && last !== undefined ? { items, next: last.seq } : { items };
  }

  // --- runs ---------------------------------------------------------------------------

  async insertRun(run: NewRun, now: number): Promise<void> {
    await this.db.insertInto('runs').values({
      id: run.id, job: run.job, reason: run.reason, status: run.status, owner: run.owner, firing: run.firing ?? null, window_end: run.windowEnd ?? null, cancel_at_window_end: run.cancelAtWindowEnd === true ? 1 : 0,
      vms: JSON.stringify(run.vms), vm_count: run.vms.length, detail: run.detail ?? null, created_at: now, ended_at: run.status === 'running' ? null : now,
    }).execute();
  }

  async getRun(id: string): Promise<RunInfo | undefined> {
    const row = await this.db.selectFrom('runs').selectAll().where('id', '=', id).executeTakeFirst();
    return row === undefined ? undefined : runInfo(row);
  }

  async listRuns(filter: RunFilter = {}): Promise<Page<RunInfo>> {
    const page = await this.listRunRows(filter);
    return { ...page, items: page.items.map(runInfo) };
  }

  /**
   * Runs as the runs list shows them: the number of VMs instead of the names (the names only
   * when `names` is asked, or for a row written before `vm_count` existed), no JSON parsed else.
   */
  async listRunSummaries(filter: RunFilter, names: boolean): Promise<Page<Omit<RunInfo, 'vms'> & { vmCount: number; vms?: string[] }>> {
    const page = await this.listRunRows(filter, names);
    const items: (Omit<RunInfo, 'vms'> & { vmCount: number; vms?: string[] })[] = [];
    for (const row of page.items) {
      const { vms: _vms, ...info } = runInfo({ ...row, vms: '[]' });
      let list = names ? (JSON.parse(row.vms) as string[]) : undefined;
      let count = row.vm_count;
      if (count === null) {
        // A run written before vm_count existed: counted once, then kept.
        list ??= JSON.parse((await this.db.selectFrom('runs').select('vms').where('id', '=', row.id).executeTakeFirstOrThrow()).vms) as string[];
        count = list.length;
        await this.db.updateTable('runs').set({ vm_count: count }).where('id', '=', row.id).execute();
      }
      items.push({ ...info, vmCount: Number(count), ...(names && list !== undefined ? { vms: list } : {}) });
    }
    return { ...page, items };
  }

  /** Rows of runs; without `names`, `vms` is read as '[]' (a run's names are kilobytes). */
  private async listRunRows(filter: RunFilter, names = true): Promise<Page<Selectable<RunTable>>> {
    const limit = Math.min(Math.max(1, filter.limit ?? 50), 1000);
    const columns = ['id', 'job', 'reason', 'status', 'owner', 'firing', 'window_end', 'cancel_at_window_end', 'detail', 'created_at', 'ended_at', 'outcomes', 'vm_count'] as const;
    let query = (names ? this.db.selectFrom('runs').selectAll() : this.db.selectFrom('runs').select(columns).select(sql<string>`'[]'`.as('vms'))).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1);
    if (filter.cursor !== undefined) {
      const at = decodeCursor(filter.cursor);
      query = query.where((eb) => eb(eb.refTuple('created_at', 'id'), '<', eb.tuple(at.time, at.id)));
    } else if ((filter.after ?? 0) > 0) {
      query = query.offset(filter.after ?? 0);
    }
    if (filter.job !== undefined) query = query.where('job', '=', filter.job);
    if (filter.status !== undefined) query = query.where('status', '=', filter.status);
    const rows = await query.execute();
    return pageOfRows(rows, limit, filter, (row) => row);
  }

  /**
   * Per run, how many of its VMs' tasks (the last attempt of each) are in each state (the runs
   * list shows counts, not names): stored in the run's row when it ended; counted from the
   * tasks for a run still going, and for one that ended before the column existed (then stored).
   */
  async taskOutcomes(runIds: readonly string[]): Promise<Map<string, Record<string, number>>> {
    const out = new Map<string, Record<string, number>>();
    if (runIds.length === 0) return out;
    const stored = await this.db.selectFrom('runs').select(['id', 'status', 'outcomes']).where('id', 'in', [...runIds]).execute();
    const missing: string[] = [];
    for (const r of stored) {
      if (r.outcomes !== null && r.status !== 'running') out.set(r.id, JSON.parse(r.outcomes) as Record<string, number>);
      else missing.push(r.id);
    }
    const counted = await this.countOutcomes(missing);
    for (const r of stored) {
      if (!missing.includes(r.id)) continue;
      const counts = counted.get(r.id) ?? {};
      out.set(r.id, counts);
      if (r.status !== 'running') await this.db.updateTable('runs').set({ outcomes: JSON.stringify(counts) }).where('id', '=', r.id).where('status', '!=', 'running').execute();
    }
    return out;
  }

  private async countOutcomes(runIds: readonly string[]): Promise<Map<string, Record<string, number>>> {
    const out = new Map<string, Record<string, number>>();
    if (runIds.length === 0) return out;
    const rows = await this.db.selectFrom('tasks').select(['run_id', 'status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('run_id', 'in', [...runIds])
      // A task that was retried counts as its last retry (the retry's row has `retry_of` = its id).
      .where((eb) => eb.not(eb.exists(eb.selectFrom('tasks as retry').select('retry.id').whereRef('retry.retry_of', '=', 'tasks.id'))))
      .groupBy(['run_id', 'status']).execute();
    for (const r of rows) {
      if (r.run_id === null) continue;
      const counts = out.get(r.run_id) ?? {};
      counts[r.status] = Number(r.n);
      out.set(r.run_id, counts);
    }
    return out;
  }

  /** How many runs match the filter. */
  async countRuns(filter: { job?: string; status?: RunStatus } = {}): Promise<number> {
    let query = this.db.selectFrom('runs').select((eb) => eb.fn.countAll<number>().as('n'));
    if (filter.job !== undefined) query = query.where('job', '=', filter.job);
    if (filter.status !== undefined) query = query.where('status', '=', filter.status);
    return Number((await query.executeTakeFirstOrThrow()).n);
  }

  /**
   * Tasks that ended in [from, to) (ms), by end then id, at most `limit`, after `after` (the
   * last row of the previous page) when given: the sweep of ended tasks (src/server/event-sweep.ts).
   */
  async tasksEndedBetween(window: EndedWindow, limit: number): Promise<TaskInfo[]> {
    let query = this.db.selectFrom('tasks').selectAll().where('ended_at', '>=', window.from).where('ended_at', '<', window.to).orderBy('ended_at').orderBy('id').limit(limit);
    if (window.after !== undefined) query = query.where((eb) => eb(eb.refTuple('ended_at', 'id'), '>', eb.tuple(window.after!.at, window.after!.id)));
    return (await query.execute()).map(taskInfo);
  }

  /** Runs that ended in [from, to) (ms), as {@link tasksEndedBetween}. */
  async runsEndedBetween(window: EndedWindow, limit: number): Promise<RunInfo[]> {
    let query = this.db.selectFrom('runs').selectAll().where('ended_at', '>=', window.from).where('ended_at', '<', window.to).orderBy('ended_at').orderBy('id').limit(limit);
    if (window.after !== undefined) query = query.where((eb) => eb(eb.refTuple('ended_at', 'id'), '>', eb.tuple(window.after!.at, window.after!.id)));
    return (await query.execute()).map(runInfo);
  }

  async runningRuns(): Promise<RunInfo[]> {
    return (await this.db.selectFrom('runs').selectAll().where('status', '=', 'running').execute()).map(runInfo);
  }

  /** The latest run of a job that did run (not a skipped firing). */
  async lastRunOf(job: string): Promise<RunInfo | undefined> {
    const row = await this.db.selectFrom('runs').selectAll().where('job', '=', job).where('status', '!=', 'skipped').orderBy('created_at', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst();
    return row === undefined ? undefined : runInfo(row);
  }

  async endRun(id: string, status: RunStatus, detail: string, now: number): Promise<boolean> {
    const outcomes = JSON.stringify((await this.countOutcomes([id])).get(id) ?? {});
    const changed = await this.db.updateTable('runs').set({ status, detail, ended_at: now, outcomes }).where('id', '=', id).where('status', '=', 'running').executeTakeFirst();
    return Number(changed.numUpdatedRows) > 0;
  }

  async tasksOfRun(runId: string): Promise<Selectable<TaskTable>[]> {
    return this.db.selectFrom('tasks').selectAll().where('run_id', '=', runId).orderBy('created_at').orderBy('id').execute();
  }

  /**
   * Deletes the runs that ended before `cutoff` with their tasks and logs (one transaction).
   * Runs still going, and their tasks, are kept whatever their age. Returns how many runs went.
   */
  async deleteHistory(cutoff: number): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      const runs = (await trx.selectFrom('runs').select('id').where('status', '!=', 'running').where('ended_at', '<', cutoff).execute()).map((r) => r.id);
      for (let i = 0; i < runs.length; i += 500) {
        const batch = runs.slice(i, i + 500);
        const tasks = trx.selectFrom('tasks').select('id').where('run_id', 'in', batch);
        await trx.deleteFrom('task_log').where('task_id', 'in', tasks).execute();
        await trx.deleteFrom('tasks').where('run_id', 'in', batch).execute();
        await trx.deleteFrom('runs').where('id', 'in', batch).execute();
      }
      const loose = trx.selectFrom('tasks').select('id').where('run_id', 'is', null).where('status', 'in', ['succeeded', 'warning', 'failed', 'cancelled', 'interrupted']).where('ended_at', '<', cutoff);
      await trx.deleteFrom('task_log').where('task_id', 'in', loose).execute();
      await trx.deleteFrom('tasks').where('run_id', 'is', null).where('status', 'in', ['succeeded', 'warning', 'failed', 'cancelled', 'interrupted']).where('ended_at', '<', cutoff).execute();
      return runs.length;
    });
  }

  // --- per-VM ordering facts ------------------------------------------------------------

  async vmStates(vms: readonly string[]): Promise<Map<string, { lastSuccess?: number; missedWindow: boolean; lastDurationMs?: number }>> {
    const out = new Map<string, { lastSuccess?: number; missedWindow: boolean; lastDurationMs?: number }>();
    if (vms.length === 0) return out;
    const rows = await this.db.selectFrom('vm_state').selectAll().where('vm', 'in', [...new Set(vms)]).execute();
    for (const r of rows) {
      out.set(r.vm, {
        ...(r.last_success_at === null ? {} : { lastSuccess: Number(r.last_success_at) }),
        missedWindow: Number(r.missed_window) === 1,
        ...(r.last_duration_ms === null ? {} : { lastDurationMs: Number(r.last_duration_ms) }),
      });
    }
    return out;
  }

  async recordVmSuccess(vm: string, now: number, durationMs: number): Promise<void> {
    await this.db.insertInto('vm_state').values({ vm, last_success_at: now, missed_window: 0, last_duration_ms: durationMs })
      .onConflict((c) => c.column('vm').doUpdateSet({ last_success_at: now, missed_window: 0, last_duration_ms: durationMs })).execute();
  }

  async setMissedWindow(vm: string, missed: boolean): Promise<void> {
    await this.db.insertInto('vm_state').values({ vm, last_success_at: null, missed_window: missed ? 1 : 0, last_duration_ms: null })
      .onConflict((c) => c.column('vm').doUpdateSet({ missed_window: missed ? 1 : 0 })).execute();
  }
}

export function taskInfo(row: Selectable<TaskTable>): TaskInfo {
  const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());
  return {
    id: row.id, runId: row.run_id, kind: row.kind as TaskKind, owner: row.owner, status: row.status as TaskStatus,
    vm: row.vm, host: row.host, datastore: row.datastore, repository: row.repository, job: row.job,
    attempt: Number(row.attempt), retryOf: row.retry_of, notBefore: iso(row.not_before), progress: Number(row.progress),
    created: iso(row.created_at) as string, started: iso(row.started_at), ended: iso(row.ended_at),
    error: row.error_code === null ? null : { code: row.error_code, message: row.error_message ?? '' },
    result: row.result === null || row.kind !== 'backup' ? null : (JSON.parse(row.result) as VmBackupResult),
    report: row.result === null || row.kind === 'backup' ? null : (JSON.parse(row.result) as TaskReport),
  };
}

/** A page of `limit` rows out of `limit + 1` read: with the offset and the keyset cursor of the next one. */
function pageOfRows<R extends { created_at: number; id: string }, T>(rows: R[], limit: number, filter: { after?: number }, map: (row: R) => T): Page<T> {
  const items = rows.slice(0, limit).map(map);
  const last = rows[limit - 1];
  if (rows.length <= limit || last === undefined) return { items };
  return { items, next: (filter.after ?? 0) + limit, cursor: encodeCursor({ time: Number(last.created_at), id: last.id }) };
}

function runInfo(row: Selectable<RunTable>): RunInfo {
  const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());
  return {
    id: row.id, job: row.job, reason: row.reason as RunReason, status: row.status as RunStatus, owner: row.owner,
    firing: iso(row.firing), windowEnd: iso(row.window_end), cancelAtWindowEnd: Number(row.cancel_at_window_end) === 1, vms: JSON.parse(row.vms) as string[], detail: row.detail,
    created: iso(row.created_at) as string, ended: iso(row.ended_at),
  };
}
