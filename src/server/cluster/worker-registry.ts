/**
 * The registry of `coffer worker` processes (the `workers` table, migration 30): a worker
 * registers at start (name, the hosts it reaches, how many tasks it runs, its version) and
 * heartbeats. A heartbeat, in a few statements:
 *
 * - records that the worker lives, with its figures (tasks running, done, bytes read);
 * - renews the lease of every task it holds (`lease_until` = the database's now + lease);
 * - tells it which of the tasks it runs someone asked to cancel, which it no longer holds
 *   (its lease expired and the task went back to the queue: it must stop them, not finish
 *   them), whether it is asked to drain, and how many backups run across the cluster (for the
 *   bandwidth shares).
 *
 * Draining (`coffer worker drain NAME`, `POST /api/v1/workers/{name}/drain`) sets a flag; the
 * worker takes nothing new and exits when its tasks have ended.
 */
import type { Kysely } from 'kysely';
import { CofferError } from '../../errors/index.js';
import type { StateSchema } from '../state/index.js';
import type { SharedBackup } from '../tasks/index.js';
import { databaseNow } from './database-clock.js';

/** What a worker says of itself at start. */
export interface WorkerIdentity {
  name: string;
  hosts?: readonly string[];
  capacity: number;
  version: string;
  pid?: number;
  machine?: string;
}

/** What a heartbeat answers. */
export interface HeartbeatAnswer {
  draining: boolean;
  /** Tasks it runs that someone asked to cancel. */
  cancel: string[];
  /** Tasks it runs but no longer holds (lease expired, taken back): stop them without recording an end. */
  lost: string[];
  /** Backups running across every worker (this one's included): what the bandwidth rules are shared by. */
  clusterBackups: SharedBackup[];
}

/** A worker as the API lists it. */
export interface WorkerInfo {
  name: string;
  /** The hosts it reaches; null: every host. */
  hosts: string[] | null;
  capacity: number;
  version: string;
  machine: string | null;
  pid: number | null;
  started: string;
  lastHeartbeat: string;
  stopped: string | null;
  /** It heartbeated within the last `staleMs` and has not stopped. */
  alive: boolean;
  draining: boolean;
  tasksRunning: number;
  tasksDone: number;
  bytesRead: number;
  /** Source bytes read per second since it started. */
  throughput: number;
}

export class WorkerRegistry {
  constructor(private readonly db: Kysely<StateSchema>) {}

  /**
   * Registers (or re-registers after a restart) a worker.
   * @throws CofferError E_USAGE when a live worker of that name heartbeated within `staleMs`.
   */
  async register(worker: WorkerIdentity, staleMs: number): Promise<void> {
    const now = await databaseNow(this.db);
    const existing = await this.db.selectFrom('workers').select(['heartbeat_at', 'stopped_at', 'pid', 'machine']).where('name', '=', worker.name).executeTakeFirst();
    if (existing !== undefined && existing.stopped_at === null && now - Number(existing.heartbeat_at) < staleMs) {
      throw new CofferError('E_USAGE', `a worker named ${worker.name} is running (pid ${existing.pid ?? '?'} on ${existing.machine ?? '?'}, heartbeat ${now - Number(existing.heartbeat_at)} ms ago): give another --name`);
    }
    const values = {
      hosts: worker.hosts === undefined ? null : JSON.stringify(worker.hosts), capacity: worker.capacity, version: worker.version,
      pid: worker.pid ?? null, machine: worker.machine ?? null, started_at: now, heartbeat_at: now, stopped_at: null, draining: 0, tasks_running: 0, tasks_done: 0, bytes_read: 0,
    };
    await this.db.insertInto('workers').values({ name: worker.name, ...values }).onConflict((c) => c.column('name').doUpdateSet(values)).execute();
  }

  async heartbeat(name: string, held: readonly string[], leaseMs: number, figures: { tasksDone: number; bytesRead: number }): Promise<HeartbeatAnswer> {
    const now = await databaseNow(this.db);
    const row = await this.db.updateTable('workers').set({ heartbeat_at: now, tasks_running: held.length, tasks_done: figures.tasksDone, bytes_read: figures.bytesRead })
      .where('name', '=', name).returning('draining').executeTakeFirst();
    const cancel: string[] = [];
    const lost: string[] = [];
    if (held.length > 0) {
      await this.db.updateTable('tasks').set({ lease_until: now + leaseMs }).where('worker', '=', name).where('status', '=', 'running').where('id', 'in', [...held]).execute();
      for (const task of await this.db.selectFrom('tasks').select(['id', 'status', 'worker', 'cancel_requested']).where('id', 'in', [...held]).execute()) {
        const mine = task.status === 'running' && task.worker === name;
        if (mine && Number(task.cancel_requested) === 1) cancel.push(task.id);
        if (task.status === 'queued' || (task.status === 'running' && task.worker !== name)) lost.push(task.id);
      }
    }
    const running = await this.db.selectFrom('tasks').select(['id', 'host', 'repository']).where('status', '=', 'running').where('kind', '=', 'backup').execute();
    const clusterBackups = running.map((r) => ({ id: r.id, host: r.host ?? '', repository: r.repository ?? '' }));
    return { draining: row === undefined || Number(row.draining) === 1, cancel, lost, clusterBackups };
  }

  /** Asks a worker to drain. @throws CofferError E_USAGE for an unknown worker. */
  async drain(name: string): Promise<void> {
    const changed = await this.db.updateTable('workers').set({ draining: 1 }).where('name', '=', name).executeTakeFirst();
    if (Number(changed.numUpdatedRows) === 0) throw new CofferError('E_USAGE', `no worker named ${name}`);
  }

  /** A clean stop. */
  async stopped(name: string, figures: { tasksDone: number; bytesRead: number }): Promise<void> {
    const now = await databaseNow(this.db);
    await this.db.updateTable('workers').set({ stopped_at: now, heartbeat_at: now, tasks_running: 0, tasks_done: figures.tasksDone, bytes_read: figures.bytesRead }).where('name', '=', name).execute();
  }

  /** Every worker ever registered, by name; `alive` when it heartbeated within `staleMs`. */
  async list(staleMs: number): Promise<WorkerInfo[]> {
    const now = await databaseNow(this.db);
    const running = new Map((await this.db.selectFrom('tasks').select(['worker', (eb) => eb.fn.countAll<number>().as('n')]).where('status', '=', 'running').where('worker', 'is not', null).groupBy('worker').execute()).map((r) => [r.worker, Number(r.n)]));
    const rows = await this.db.selectFrom('workers').selectAll().orderBy('name').execute();
    const iso = (ms: number) => new Date(Number(ms)).toISOString();
    return rows.map((r) => {
      const seconds = Math.max(1, (Number(r.heartbeat_at) - Number(r.started_at)) / 1000);
      return {
        name: r.name, hosts: r.hosts === null ? null : (JSON.parse(r.hosts) as string[]), capacity: Number(r.capacity), version: r.version, machine: r.machine, pid: r.pid === null ? null : Number(r.pid),
        started: iso(r.started_at), lastHeartbeat: iso(r.heartbeat_at), stopped: r.stopped_at === null ? null : iso(r.stopped_at),
        alive: r.stopped_at === null && now - Number(r.heartbeat_at) < staleMs, draining: Number(r.draining) === 1,
        tasksRunning: running.get(r.name) ?? 0, tasksDone: Number(r.tasks_done), bytesRead: Number(r.bytes_read), throughput: Math.round(Number(r.bytes_read) / seconds),
      };
    });
  }
}
