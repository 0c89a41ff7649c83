/**
 * The figures `/metrics` serves, read from the tables the notifier keeps current
 * (event-history.ts) and from the delivery log: a few rows per scrape.
 */
import type { Kysely } from 'kysely';
import type { StateSchema } from '../state/index.js';
import { deliveryCounts } from './outbox.js';

/** Everything `/metrics` shows, as plain numbers (times in ms since the epoch). */
export interface MetricsFigures {
  /** The last successful backup of each VM in each job. */
  vmBackups: { vm: string; job: string; at: number; logicalBytes: number; readBytes: number; newBytes: number; storedBytes: number; durationMs: number }[];
  repositories: { repository: string; storedBytes?: number; freeBytes?: number; totalBytes?: number }[];
  /** Finished tasks by kind and status. */
  tasks: { kind: string; status: string; count: number }[];
  /** Delivery attempts by target and outcome (`sent`, `failed`). */
  deliveries: { target: string; outcome: string; count: number }[];
  /** Messages waiting in the outbox. */
  outboxPending: number;
}

/** Reads the current figures. */
export async function readMetricsFigures(db: Kysely<StateSchema>): Promise<MetricsFigures> {
  const [vms, repos, tasks, deliveries, pending] = await Promise.all([
    db.selectFrom('metrics_vm_backups').selectAll().orderBy('vm').orderBy('job').execute(),
    db.selectFrom('metrics_repositories').selectAll().orderBy('repository').execute(),
    db.selectFrom('metrics_task_counts').selectAll().orderBy('kind').orderBy('status').execute(),
    deliveryCounts(db),
    db.selectFrom('notify_outbox').select((eb) => eb.fn.countAll<number>().as('n')).where('status', '=', 'pending').executeTakeFirstOrThrow(),
  ]);
  return {
    vmBackups: vms.map((r) => ({
      vm: r.vm,
      job: r.job,
      at: Number(r.at),
      logicalBytes: Number(r.logical_bytes),
      readBytes: Number(r.read_bytes),
      newBytes: Number(r.new_bytes),
      storedBytes: Number(r.stored_bytes),
      durationMs: Number(r.duration_ms),
    })),
    repositories: repos.map((r) => ({
      repository: r.repository,
      ...(r.stored_bytes === null ? {} : { storedBytes: Number(r.stored_bytes) }),
      ...(r.free_bytes === null ? {} : { freeBytes: Number(r.free_bytes) }),
      ...(r.total_bytes === null ? {} : { totalBytes: Number(r.total_bytes) }),
    })),
    tasks: tasks.map((r) => ({ kind: r.kind, status: r.status, count: Number(r.count) })),
    deliveries,
    outboxPending: Number(pending.n),
  };
}
