/**
 * Migration 33: the source latency guard across workers (docs/scale.md, docs/tasks.md "How
 * the limits apply"). A running backup's worker writes, with each progress report (fenced: only
 * while the row names it), the mean latency of its source reads (`source_latency_ms`, when the
 * report has one), when it wrote it (`source_latency_at`, the database's clock), and that it
 * has read every byte (`source_read_done`); the hand-out reads them for every worker's running
 * backups and holds a datastore as the single-process runner does (tasks/choose-starts.ts).
 * A hand-out clears them when it takes a task. Rows of older tasks keep NULL and 0.
 */
import type { Migration } from '../migration.js';

export const taskReadLatency: Migration = {
  id: 33,
  name: 'task-source-latency',
  async up(db) {
    await db.schema.alterTable('tasks').addColumn('source_latency_ms', 'real').execute();
    await db.schema.alterTable('tasks').addColumn('source_latency_at', 'bigint').execute();
    await db.schema.alterTable('tasks').addColumn('source_read_done', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  },
};
