/**
 * Migration 30: scale-out (#10 items 2–4). Workers on other machines take tasks from the
 * `tasks` table itself (the queue is the table: `status = 'queued'`), so a task gains its
 * worker, a lease and a cancel request; `workers` is the registry (heartbeats, draining);
 * `cluster_policy` holds the limits, bandwidth rules and retry policy the servers publish for
 * the workers; `firing_claims` makes a scheduled firing start once with several servers.
 * See docs/scale.md and src/server/cluster/.
 */
import type { Migration } from '../migration.js';

export const cluster: Migration = {
  id: 30,
  name: 'cluster-workers-leases',
  async up(db) {
    await db.schema.alterTable('tasks').addColumn('worker', 'text').execute();
    await db.schema.alterTable('tasks').addColumn('lease_until', 'bigint').execute();
    await db.schema.alterTable('tasks').addColumn('cancel_requested', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    await db.schema.createIndex('tasks_by_worker').on('tasks').columns(['worker', 'status']).execute();
    await db.schema
      .createTable('workers')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('hosts', 'text')
      .addColumn('capacity', 'integer', (c) => c.notNull())
      .addColumn('version', 'text', (c) => c.notNull())
      .addColumn('pid', 'integer')
      .addColumn('machine', 'text')
      .addColumn('started_at', 'bigint', (c) => c.notNull())
      .addColumn('heartbeat_at', 'bigint', (c) => c.notNull())
      .addColumn('stopped_at', 'bigint')
      .addColumn('draining', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('tasks_running', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('tasks_done', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('bytes_read', 'bigint', (c) => c.notNull().defaultTo(0))
      .execute();
    await db.schema
      .createTable('cluster_policy')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('value', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('firing_claims')
      .addColumn('job', 'text', (c) => c.notNull())
      .addColumn('firing', 'bigint', (c) => c.notNull())
      .addColumn('claimed_by', 'text', (c) => c.notNull())
      .addColumn('claimed_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('firing_claims_pk', ['job', 'firing'])
      .execute();
  },
};
