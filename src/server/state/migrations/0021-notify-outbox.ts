/**
 * Migration 21: `notify_outbox` (messages queued per target, kept after delivery as the
 * record of what was sent) and `notify_deliveries` (every attempt, with its error).
 */
import { idColumn, idReferenceType } from '../dialect.js';
import type { Migration } from '../migration.js';

export const notifyOutbox: Migration = {
  id: 21,
  name: 'notify-outbox',
  async up(db, context) {
    await db.schema
      .createTable('notify_outbox')
      .$call(idColumn(context))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('rule', 'text', (c) => c.notNull())
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('dedupe_key', 'text', (c) => c.notNull())
      .addColumn('message', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
      .addColumn('last_error', 'text')
      .addColumn('done_at', 'bigint')
      .execute();
    await db.schema.createIndex('notify_outbox_due').on('notify_outbox').columns(['status', 'next_attempt_at']).execute();
    await db.schema.createIndex('notify_outbox_dedupe').on('notify_outbox').columns(['dedupe_key', 'created_at']).execute();
    await db.schema
      .createTable('notify_deliveries')
      .$call(idColumn(context))
      .addColumn('outbox_id', idReferenceType(context), (c) => c.notNull().references('notify_outbox.id').onDelete('cascade'))
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('attempt', 'integer', (c) => c.notNull())
      .addColumn('outcome', 'text', (c) => c.notNull())
      .addColumn('error', 'text')
      .addColumn('duration_ms', 'integer', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('notify_deliveries_outbox').on('notify_deliveries').column('outbox_id').execute();
  },
};
