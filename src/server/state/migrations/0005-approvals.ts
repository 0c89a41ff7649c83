/**
 * Migration 5: four-eyes approvals. A destructive operation asked for while
 * `security.four-eyes` is on is stored here as a request (the operation and its arguments as
 * JSON) and runs only when a second administrator approves it.
 */
import type { Migration } from '../migration.js';

export const approvals: Migration = {
  id: 5,
  name: 'approvals',
  async up(db) {
    await db.schema
      .createTable('approvals')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('operation', 'text', (c) => c.notNull())
      .addColumn('arguments', 'text', (c) => c.notNull())
      .addColumn('summary', 'text', (c) => c.notNull())
      .addColumn('requested_by', 'text', (c) => c.notNull())
      .addColumn('requested_at', 'bigint', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('decided_by', 'text')
      .addColumn('decided_at', 'bigint')
      .addColumn('result', 'text')
      .execute();
  },
};
