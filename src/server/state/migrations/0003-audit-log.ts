/**
 * Migration 3: the audit log, append-only. The code has no UPDATE or DELETE path for it, and
 * the database refuses both (triggers that abort), so even a bug or a hand-typed statement
 * through the service's connection cannot rewrite history. Ids sort by time (see
 * audit/audit-id.ts), so paging by id is paging by time.
 */
import { sql, SqliteAdapter } from 'kysely';
import type { Migration } from '../migration.js';

export const auditLog: Migration = {
  id: 3,
  name: 'audit-log',
  async up(db) {
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
    if (db.getExecutor().adapter instanceof SqliteAdapter) {
      for (const operation of ['UPDATE', 'DELETE']) {
        await sql
          .raw(`CREATE TRIGGER audit_log_no_${operation.toLowerCase()} BEFORE ${operation} ON audit_log BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END`)
          .execute(db);
      }
    } else {
      // PostgreSQL (#10): the same refusal as a rule-free trigger function.
      await sql
        .raw(`CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$`)
        .execute(db);
      await sql.raw('CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()').execute(db);
    }
  },
};
