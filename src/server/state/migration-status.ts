/**
 * Which migrations a state database has, and which it lacks, without changing it (what
 * `coffer server migrate --status` prints).
 */
import { sql, type Kysely } from 'kysely';
import { dialectOf } from './dialect.js';
import type { Migration } from './migration.js';
import type { StateSchema } from './schema.js';

export interface MigrationStatus {
  /** Steps recorded in the database, in order, with when they ran (ms since the epoch). */
  applied: { id: number; name: string; appliedAt: number }[];
  /** Steps this Coffer knows that the database lacks. */
  pending: { id: number; name: string }[];
  /** Steps the database has that this Coffer does not know (a newer Coffer ran): not empty means refused. */
  unknown: number[];
}

export async function readMigrationStatus(db: Kysely<StateSchema>, migrations: readonly Migration[]): Promise<MigrationStatus> {
  const applied = (await hasMigrationTable(db))
    ? (await db.selectFrom('coffer_migrations').selectAll().orderBy('id').execute()).map((r) => ({ id: Number(r.id), name: r.name, appliedAt: Number(r.applied_at) }))
    : [];
  const ids = new Set(applied.map((a) => a.id));
  return {
    applied,
    pending: migrations.filter((m) => !ids.has(m.id)).map((m) => ({ id: m.id, name: m.name })),
    unknown: applied.filter((a) => !migrations.some((m) => m.id === a.id)).map((a) => a.id),
  };
}

async function hasMigrationTable(db: Kysely<StateSchema>): Promise<boolean> {
  const query =
    dialectOf(db as unknown as Kysely<unknown>) === 'postgres'
      ? sql<{ found: number }>`SELECT 1 AS found FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'coffer_migrations'`
      : sql<{ found: number }>`SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = 'coffer_migrations'`;
  return (await query.execute(db)).rows.length > 0;
}
