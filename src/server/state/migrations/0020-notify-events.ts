/** Migration 20: `notify_events`, what the notifier was told (for summaries and run grouping). */
import { idColumn } from '../dialect.js';
import type { Migration } from '../migration.js';

export const notifyEvents: Migration = {
  id: 20,
  name: 'notify-events',
  async up(db, context) {
    await db.schema
      .createTable('notify_events')
      .$call(idColumn(context))
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('severity', 'text', (c) => c.notNull())
      .addColumn('job', 'text')
      .addColumn('run_id', 'text')
      .addColumn('vm', 'text')
      .addColumn('host', 'text')
      .addColumn('vm_tags', 'text', (c) => c.notNull())
      .addColumn('summary', 'text', (c) => c.notNull())
      .addColumn('error', 'text')
      .addColumn('data', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('notify_events_at').on('notify_events').column('at').execute();
    await db.schema.createIndex('notify_events_run').on('notify_events').column('run_id').execute();
  },
};
