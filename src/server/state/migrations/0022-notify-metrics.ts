/**
 * Migration 22: the notifier's small facts (`notify_state`) and the figures `/metrics` serves,
 * kept current as events arrive (`metrics_vm_backups`, `metrics_repositories`,
 * `metrics_task_counts`), so a scrape reads a few rows instead of the event history.
 */
import type { Migration } from '../migration.js';

export const notifyMetrics: Migration = {
  id: 22,
  name: 'notify-metrics',
  async up(db) {
    await db.schema
      .createTable('notify_state')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('value', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('metrics_vm_backups')
      .addColumn('vm', 'text', (c) => c.notNull())
      .addColumn('job', 'text', (c) => c.notNull())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('logical_bytes', 'bigint', (c) => c.notNull())
      .addColumn('read_bytes', 'bigint', (c) => c.notNull())
      .addColumn('new_bytes', 'bigint', (c) => c.notNull())
      .addColumn('stored_bytes', 'bigint', (c) => c.notNull())
      .addColumn('duration_ms', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('metrics_vm_backups_pk', ['vm', 'job'])
      .execute();
    await db.schema
      .createTable('metrics_repositories')
      .addColumn('repository', 'text', (c) => c.primaryKey())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('stored_bytes', 'bigint')
      .addColumn('free_bytes', 'bigint')
      .addColumn('total_bytes', 'bigint')
      .execute();
    await db.schema
      .createTable('metrics_task_counts')
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('count', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('metrics_task_counts_pk', ['kind', 'status'])
      .execute();
  },
};
