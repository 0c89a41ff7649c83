/**
 * Migration 3: the audit log, append-only. The code has no UPDATE or DELETE path for it, and
 * the database refuses both (triggers that abort), so even a bug or a hand-typed statement
 * through the service's connection cannot rewrite history. Ids sort by time (see
 * audit/audit-id.ts), so paging by id is paging by time.
 */
import { forbidUpdateAndDelete } from '../dialect.js';
import type { Migration } from '../migration.js';

export const auditLog: Migration = {
  id: 3,
  name: 'audit-log',
  async up(db, context) {
    await db.schema
      .createTable('audit_log')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('at', 'bigint', (c) => c.notNull())
      .addColumn('actor', 'text', (c) => c.notNull())
      .addColumn('address', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('outcome', 'text', (c) => c.notNull())
      .addColumn('details', 'text', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('audit_by_actor').on('audit_log').columns(['actor', 'id']).execute();
    await db.schema.createIndex('audit_by_action').on('audit_log').columns(['action', 'id']).execute();
    // Both engines refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) with triggers.
    await forbidUpdateAndDelete(db, 'audit_log', context);
  },
};
