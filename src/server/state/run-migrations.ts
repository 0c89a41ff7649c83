/**
 * Brings a state database up to the newest schema this Coffer knows. Each pending migration
 * runs in its own transaction together with the row that records it, so a crash (kill -9,
 * power loss) leaves the database at a whole step, never half-way through one; a second
 * process migrating at the same moment waits for the first (SQLite's write lock) and then
 * finds nothing left to do. A database that a newer Coffer migrated is refused: running old
 * code on a newer schema could misread it.
 */
import type { Kysely } from 'kysely';
import { CofferError } from '../../errors/index.js';
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

export async function runMigrations(
  db: Kysely<StateSchema>,
  migrations: readonly Migration[],
  now: () => number = Date.now,
): Promise<MigrationReport> {
  checkOrdered(migrations);
  await db.schema
    .createTable('coffer_migrations')
    .ifNotExists()
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('applied_at', 'bigint', (c) => c.notNull())
    .execute();

  const before = await appliedIds(db);
  const newest = migrations.at(-1)?.id ?? 0;
  const unknown = [...before].filter((id) => !migrations.some((m) => m.id === id));
  if (unknown.length > 0) {
    throw new CofferError(
      'E_STATE_TOO_NEW',
      `the state database has schema step ${Math.max(...unknown)}, this Coffer knows steps up to ${newest}: run the newer Coffer, or restore the data directory's backup`,
    );
  }
  const from = before.size === 0 ? 0 : Math.max(...before);
  const applied: string[] = [];
  for (const migration of migrations) {
    if (before.has(migration.id)) continue;
    const ran = await db.transaction().execute(async (trx) => {
      // Another process may have applied it since we looked: the check is inside the transaction.
      const done = await trx.selectFrom('coffer_migrations').select('id').where('id', '=', migration.id).executeTakeFirst();
      if (done !== undefined) return false;
      await migration.up(trx as unknown as Kysely<unknown>);
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

function checkOrdered(migrations: readonly Migration[]): void {
  let last = 0;
  for (const m of migrations) {
    if (!Number.isInteger(m.id) || m.id <= last) {
      throw new Error(`migration ids must increase: ${m.id} (${m.name}) follows ${last}`);
    }
    last = m.id;
  }
}

