/**
 * The tables of the service's state database, as Kysely sees them. One interface per table;
 * the migrations in `migrations/` create exactly these columns. Portable types only (text,
 * integer, real), so the same migrations run on SQLite (the embedded default) and, later, on
 * PostgreSQL (#10): times are integers of milliseconds since the epoch (UTC), booleans are 0/1
 * integers, structured values are JSON text.
 *
 * What lives here is the service's own state (who may do what, what ran, what is running,
 * what was changed by whom). Nothing a restore needs lives only here: the repository alone
 * restores everything (DESIGN.md).
 */


/** Which migrations have run: one row per applied migration. */
export interface MigrationTable {
  id: number;
  name: string;
  applied_at: number;
}

/** Small facts about this state database (its id, when it was created). */
export interface MetaTable {
  key: string;
  value: string;
}

/** Every table of the state database. */
export interface StateSchema {
  coffer_migrations: MigrationTable;
  meta: MetaTable;
}
