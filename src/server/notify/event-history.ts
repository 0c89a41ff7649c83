/**
 * The notifier's own record of events (`notify_events`) and the `/metrics` figures kept
 * current from them (`metrics_*` tables). Each `record` is one transaction, so an event is
 * either recorded with its figures or not at all.
 */
import type { Kysely, Selectable } from 'kysely';
import type { StateSchema } from '../state/index.js';
import type { EventType, NotificationEvent, RecordedEvent, Severity } from './event.js';

type Db = Kysely<StateSchema>;
type EventRow = Selectable<StateSchema['notify_events']>;

/**
 * The unique name of an event that happens once: a task's (by task and type) or a run's
 * `job.finished` and VM events (by run, type and VM); undefined for others.
 */
export function eventKey(event: Pick<NotificationEvent, 'type' | 'taskId' | 'runId' | 'vm'>): string | undefined {
  if (event.taskId !== undefined) return JSON.stringify(['task', event.taskId, event.type]);
  if (event.runId !== undefined && (event.type === 'job.finished' || event.type.startsWith('vm.'))) return JSON.stringify(['run', event.runId, event.type, event.vm ?? null]);
  return undefined;
}

/**
 * Records `event` (with `at` resolved) and updates the metrics tables; returns it with its id,
 * or undefined (and records nothing) when an event of the same {@link eventKey} is recorded
 * already: the unique key makes that check and the insert one step, whoever else records.
 */
export async function recordEvent(db: Db, event: NotificationEvent & { at: number }): Promise<RecordedEvent | undefined> {
  return db.transaction().execute(async (trx) => {
    const data = { repository: event.repository, backup: event.backup, task: event.task };
    const key = eventKey(event) ?? null;
    const inserted = await trx
      .insertInto('notify_events')
      .values({
        at: event.at,
        type: event.type,
        severity: event.severity,
        job: event.job ?? null,
        run_id: event.runId ?? null,
        vm: event.vm ?? null,
        host: event.host ?? null,
        vm_tags: JSON.stringify(event.vmTags ?? []),
        summary: event.summary,
        error: event.error ?? null,
        data: JSON.stringify(data),
        task_id: event.taskId ?? null,
        event_key: key,
      })
      .onConflict((c) => c.column('event_key').doNothing())
      .returning('id')
      .executeTakeFirst();
    if (inserted === undefined) return undefined;
    const { id } = inserted;
    if (event.type === 'vm.succeeded' && event.backup !== undefined && event.vm !== undefined && event.job !== undefined) {
      const b = event.backup;
      const row = {
        at: event.at,
        logical_bytes: b.logicalBytes,
        read_bytes: b.readBytes,
        new_bytes: b.newBytes,
        stored_bytes: b.storedBytes,
        duration_ms: b.durationMs,
      };
      await trx
        .insertInto('metrics_vm_backups')
        .values({ vm: event.vm, job: event.job, ...row })
        .onConflict((c) => c.columns(['vm', 'job']).doUpdateSet(row).where('metrics_vm_backups.at', '<=', event.at)) // an older event arriving late changes nothing
        .execute();
    }
    const r = event.repository;
    if (r !== undefined && (r.storedBytes !== undefined || r.freeBytes !== undefined || r.totalBytes !== undefined)) {
      const known = {
        at: event.at,
        ...(r.storedBytes === undefined ? {} : { stored_bytes: r.storedBytes }),
        ...(r.freeBytes === undefined ? {} : { free_bytes: r.freeBytes }),
        ...(r.totalBytes === undefined ? {} : { total_bytes: r.totalBytes }),
      };
      await trx
        .insertInto('metrics_repositories')
        .values({ repository: r.name, stored_bytes: null, free_bytes: null, total_bytes: null, ...known })
        .onConflict((c) => c.column('repository').doUpdateSet(known))
        .execute();
    }
    if (event.type === 'task.finished' && event.task !== undefined) {
      await trx
        .insertInto('metrics_task_counts')
        .values({ kind: event.task.kind, status: event.task.status, count: 1 })
        .onConflict((c) => c.columns(['kind', 'status']).doUpdateSet((eb) => ({ count: eb('metrics_task_counts.count', '+', 1) })))
        .execute();
    }
    return { ...event, id: Number(id), vmTags: event.vmTags ?? [] };
  });
}

/**
 * The event of type `type` already recorded for run `runId` (and VM `vm`), if any. A run's
 * events happen once; a second copy comes from a second server hearing the same event (the
 * relay between servers, around a change of leader) and must be neither recorded nor sent.
 */
export async function recordedRunEvent(db: Db, type: EventType, runId: string, vm: string | undefined): Promise<RecordedEvent | undefined> {
  const row = await db.selectFrom('notify_events').selectAll()
    .where('type', '=', type).where('run_id', '=', runId)
    .where((eb) => (vm === undefined ? eb('vm', 'is', null) : eb('vm', '=', vm)))
    .orderBy('id').limit(1).executeTakeFirst();
  return row === undefined ? undefined : toEvent(row);
}

/** The event recorded under `key` ({@link eventKey}), if any. */
export async function recordedEventByKey(db: Db, key: string): Promise<RecordedEvent | undefined> {
  const row = await db.selectFrom('notify_events').selectAll().where('event_key', '=', key).executeTakeFirst();
  return row === undefined ? undefined : toEvent(row);
}

/** The event of type `type` already recorded for task `taskId`, if any (see NotificationEvent.taskId). */
export async function recordedTaskEvent(db: Db, type: EventType, taskId: string): Promise<RecordedEvent | undefined> {
  const row = await db.selectFrom('notify_events').selectAll().where('task_id', '=', taskId).where('type', '=', type).orderBy('id').limit(1).executeTakeFirst();
  return row === undefined ? undefined : toEvent(row);
}

/** The VM events (`vm.*`) recorded with run id `runId`, oldest first. */
export async function runVmEvents(db: Db, runId: string): Promise<RecordedEvent[]> {
  const rows = await db.selectFrom('notify_events').selectAll().where('run_id', '=', runId).where('type', 'like', 'vm.%').orderBy('id').execute();
  return rows.map(toEvent);
}

/** The events recorded in [from, to), oldest first. */
export async function eventsBetween(db: Db, from: number, to: number): Promise<RecordedEvent[]> {
  const rows = await db.selectFrom('notify_events').selectAll().where('at', '>=', from).where('at', '<', to).orderBy('at').orderBy('id').execute();
  return rows.map(toEvent);
}

/** Deletes events older than `before`; returns how many. */
export async function pruneEvents(db: Db, before: number): Promise<number> {
  const result = await db.deleteFrom('notify_events').where('at', '<', before).executeTakeFirst();
  return Number(result.numDeletedRows);
}

function toEvent(row: EventRow): RecordedEvent {
  const data = JSON.parse(row.data) as Pick<NotificationEvent, 'repository' | 'backup' | 'task'>;
  return {
    id: Number(row.id),
    at: Number(row.at),
    type: row.type as EventType,
    severity: row.severity as Severity,
    summary: row.summary,
    vmTags: JSON.parse(row.vm_tags) as string[],
    ...(row.error === null ? {} : { error: row.error }),
    ...(row.job === null ? {} : { job: row.job }),
    ...(row.run_id === null ? {} : { runId: row.run_id }),
    ...(row.task_id === null ? {} : { taskId: row.task_id }),
    ...(row.vm === null ? {} : { vm: row.vm }),
    ...(row.host === null ? {} : { host: row.host }),
    ...(data.repository === undefined ? {} : { repository: data.repository }),
    ...(data.backup === undefined ? {} : { backup: data.backup }),
    ...(data.task === undefined ? {} : { task: data.task }),
  };
}
