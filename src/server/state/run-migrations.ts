/**
 * Brings a state database up to the newest schema this Coffer knows. Each pending migration
 * runs in its own transaction together with the row that records it, so a crash (kill -9,
 * power loss) leaves the database at a whole step, never half-way through one (PostgreSQL and
 * SQLite both run DDL inside transactions).
 *
 * Several processes may start at once (servers and workers sharing one PostgreSQL, #10): each
 * transaction first takes the migration lock, then checks whether its step was applied
 * meanwhile, so every step runs exactly once and the others wait and find nothing left to do.
 * The lock is SQLite's write lock on SQLite, and a transaction-scoped advisory lock
 * (`pg_advisory_xact_lock`, key {@link MIGRATION_LOCK_KEY}) on PostgreSQL, released by the
 * commit or rollback, so a process killed mid-step never leaves it held. A wait for the lock is
 * bounded by the busy timeout (SQLite) or the statement timeout (PostgreSQL).
 *
 * A database that a newer Coffer migrated is refused: running old code on a newer schema could
 * misread it.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import { CofferError } from '../../errors/index.js';
import { dialectOf, type StateDialect } from './dialect.js';
import type { Migration } from './migration.js';
import type { StateSchema } from './schema.js';

/** What {@link runMigrations} did. */
export interface MigrationReport {
  /** The schema version before (0: a new database). */
  from: number;
  /** The schema version now. */
  to: number;
  applied: string[];
}

/** The advisory lock's key on PostgreSQL: the bytes of "coffer:m" as a 64-bit integer. */
export const MIGRATION_LOCK_KEY = 0x636f666665723a6dn;

export interface RunMigrationsOptions {
  /** The clock for `applied_at` (ms since the epoch). */
  now?: () => number;
  /**
   * PostgreSQL: the statement timeout inside a migration's transaction, ms, instead of the
   * pool's (30 s, sized for API queries): a step that rewrites a large table, or a wait for
   * the lock while another process runs one, may take longer. Default 10 minutes.
   */
  stepTimeoutMs?: number;
}

export async function runMigrations(
  db: Kysely<StateSchema>,
  migrations: readonly Migration[],
  options: RunMigrationsOptions = {},
): Promise<MigrationReport> {
  const now = options.now ?? Date.now;
  const stepTimeoutMs = options.stepTimeoutMs ?? 600_000;
  const dialect = dialectOf(db as unknown as Kysely<unknown>);
  checkOrdered(migrations);
  await db.transaction().execute(async (trx) => {
    // Two PostgreSQL sessions creating the same table at once would collide in the catalog.
    await takeMigrationLock(trx, dialect, stepTimeoutMs);
    await trx.schema
      .createTable('coffer_migrations')
      .ifNotExists()
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('applied_at', 'bigint', (c) => c.notNull())
      .execute();
  });

  const before = await appliedIds(db);
  const newest = migrations.at(-1)?.id ?? 0;
  refuseUnknown(before, migrations);
  const from = before.size === 0 ? 0 : Math.max(...before);
  const applied: string[] = [];
  for (const migration of migrations) {
    if (before.has(migration.id)) continue;
    const ran = await db.transaction().execute(async (trx) => {
      await takeMigrationLock(trx, dialect, stepTimeoutMs);
      // Another process may have applied it since we looked: the check is inside the lock.
      const done = await trx.selectFrom('coffer_migrations').select('id').where('id', '=', migration.id).executeTakeFirst();
      if (done !== undefined) return false;
      // ...and may have gone further than this code knows.
      refuseUnknown(await appliedIds(trx), migrations);
      await migration.up(trx as unknown as Kysely<unknown>, { dialect });
      await trx.insertInto('coffer_migrations').values({ id: migration.id, name: migration.name, applied_at: now() }).execute();
      return true;
    });
    if (ran) applied.push(`${migration.id}-${migration.name}`);
  }
  return { from, to: newest, applied };
}

/** The ids of the migrations already applied. */
export async function appliedIds(db: Kysely<StateSchema>): Promise<Set<number>> {
  const rows = await db.selectFrom('coffer_migrations').select('id').execute();
  return new Set(rows.map((r) => Number(r.id)));
}

/** Blocks until this transaction holds the migration lock. */
async function takeMigrationLock(trx: Transaction<StateSchema>, dialect: StateDialect, timeoutMs: number): Promise<void> {
  // SQLite: the transaction's first write takes the database's write lock (busy timeout).
  if (dialect !== 'postgres') return;
  await sql`SELECT set_config('statement_timeout', ${String(Math.max(1, Math.round(timeoutMs)))}, true)`.execute(trx);
  await sql`SELECT pg_advisory_xact_lock(${sql.raw(MIGRATION_LOCK_KEY.toString())})`.execute(trx);
}

function refuseUnknown(applied: Set<number>, migrations: readonly Migration[]): void {
  const unknown = [...applied].filter((id) => !migrations.some((m) => m.id === id));
  if (unknown.length > 0) {
    const newest = migrations.at(-1)?.id ?? 0;
    throw new CofferError(
      'E_STATE_TOO_NEW',
      `the state database has schema step ${Math.max(...unknown)}, this Coffer knows steps up to ${newest}: run the newer Coffer, or restore the data directory's backup`,
    );
  }
}

function checkOrdered(migrations: readonly Migration[]): void {
  let last = 0;
  for (const m of migrations) {
    if (!Number.isInteger(m.id) || m.id <= last) {
      throw new Error(`migration ids must increase: ${m.id} (${m.name}) follows ${last}`);
    }
    last = m.id;
  }
}
