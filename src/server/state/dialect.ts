/**
 * The two SQL engines the state database runs on, and the few schema spots where they differ,
 * in one place (docs/state-database.md, "Writing portable migrations and queries"):
 *
 * - generated ids: `integer primary key autoincrement` on SQLite (a rowid, never reused),
 *   `bigserial primary key` on PostgreSQL (a sequence, never reused either); a column that
 *   refers to such an id is `integer` on SQLite and `bigint` on PostgreSQL ({@link idColumn},
 *   {@link idReferenceType});
 * - append-only tables (the audit log): a trigger that aborts UPDATE and DELETE, written in
 *   each engine's trigger language ({@link forbidUpdateAndDelete}).
 *
 * Everything else a migration needs (tables, indexes, foreign keys, `text`, `integer`,
 * `bigint`, `real`) Kysely's schema builder writes portably.
 */
import { PostgresAdapter, sql, type CreateTableBuilder, type Kysely, type RawBuilder } from 'kysely';

/** Which engine a state database runs on. */
export type StateDialect = 'sqlite' | 'postgres';

/** What a migration is told about the database it changes. */
export interface MigrationContext {
  dialect: StateDialect;
}

/** The engine behind `db` (from Kysely's adapter). */
export function dialectOf(db: Kysely<unknown>): StateDialect {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgres' : 'sqlite';
}

/**
 * The database's clock now, ms since the epoch, as an expression a statement writes (no round
 * trip of its own): on PostgreSQL `clock_timestamp()`, so that what workers on several machines
 * write compares with the leases and with each other; SQLite is one machine's file, so its
 * clock is this process's.
 */
export function databaseClockMs(db: Kysely<unknown>): RawBuilder<number> {
  return dialectOf(db) === 'postgres' ? sql<number>`(extract(epoch from clock_timestamp()) * 1000)::bigint` : sql<number>`${Date.now()}`;
}

/**
 * Adds the generated primary key column `name` (default `id`): use with `$call`.
 * @example
 * await db.schema.createTable('audit').$call(idColumn(context)).addColumn('at', 'bigint', (c) => c.notNull()).execute();
 */
export function idColumn(context: MigrationContext, name = 'id') {
  return <TB extends string, C extends string>(table: CreateTableBuilder<TB, C>) =>
    context.dialect === 'postgres'
      ? table.addColumn(name, 'bigserial', (c) => c.primaryKey())
      : table.addColumn(name, 'integer', (c) => c.primaryKey().autoIncrement());
}

/** The type of a column that holds a generated id of another table (a foreign key). */
export function idReferenceType(context: MigrationContext): 'integer' | 'bigint' {
  return context.dialect === 'postgres' ? 'bigint' : 'integer';
}

/**
 * Makes `table` append-only: any UPDATE or DELETE of its rows fails with an error naming the
 * table (SQLite: `RAISE(ABORT)` triggers; PostgreSQL: a trigger function raising an
 * exception, which also covers TRUNCATE). `table` must be a plain identifier.
 */
export async function forbidUpdateAndDelete(db: Kysely<unknown>, table: string, context: MigrationContext): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new Error(`not a plain table name: ${table}`);
  const message = `${table} is append-only`;
  if (context.dialect === 'sqlite') {
    for (const action of ['update', 'delete']) {
      await sql
        .raw(`CREATE TRIGGER ${table}_no_${action} BEFORE ${action.toUpperCase()} ON ${table} BEGIN SELECT RAISE(ABORT, '${message}'); END`)
        .execute(db);
    }
    return;
  }
  await sql
    .raw(`CREATE FUNCTION ${table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '${message}'; END $$`)
    .execute(db);
  await sql.raw(`CREATE TRIGGER ${table}_no_change BEFORE UPDATE OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION ${table}_append_only()`).execute(db);
  await sql.raw(`CREATE TRIGGER ${table}_no_truncate BEFORE TRUNCATE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION ${table}_append_only()`).execute(db);
}
