/**
 * The service's state database: opened, migrated to the newest schema, and handed to callers
 * as a Kysely instance typed by {@link StateSchema}. The embedded default is one SQLite file in
 * the server's data directory (better-sqlite3, WAL mode so readers never wait for the writer,
 * synchronous=FULL so a committed change survives a power cut: the audit log must not lose
 * what it promised). Callers see only Kysely, so PostgreSQL (#10) fits behind the same type.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { CofferError, isCofferError } from '../../errors/index.js';
import type { Migration } from './migration.js';
import { MIGRATIONS } from './migrations/index.js';
import { runMigrations, type MigrationReport } from './run-migrations.js';
import type { StateSchema } from './schema.js';

export interface StateDatabase {
  readonly db: Kysely<StateSchema>;
  /** The database's own id, made when it was created (stable across restarts and upgrades). */
  readonly id: string;
  /** What opening it migrated. */
  readonly migrations: MigrationReport;
  close(): Promise<void>;
}

export interface OpenStateOptions {
  /** The SQLite file (created with its directory when missing), or `:memory:`. */
  file: string;
  /** The migrations to apply; all of Coffer's by default (tests pass their own lists). */
  migrations?: readonly Migration[];
  /** How long to wait for another process's write lock before giving up, ms. */
  busyTimeoutMs?: number;
  now?: () => number;
}

export async function openStateDatabase(options: OpenStateOptions): Promise<StateDatabase> {
  const { file } = options;
  let sqlite: Database.Database;
  try {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    sqlite = new Database(file, { timeout: options.busyTimeoutMs ?? 10_000 });
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('foreign_keys = ON');
  } catch (error) {
    throw new CofferError('E_STATE_UNAVAILABLE', `cannot open the state database ${file}: ${describe(error)}`, {
      subject: { path: file },
      cause: error,
    });
  }
  const db = new Kysely<StateSchema>({ dialect: new SqliteDialect({ database: sqlite }) });
  try {
    const now = options.now ?? Date.now;
    const migrations = await runMigrations(db, options.migrations ?? MIGRATIONS, now);
    const id = await ensureDatabaseId(db, now);
    return { db, id, migrations, close: () => db.destroy() };
  } catch (error) {
    await db.destroy();
    if (isCofferError(error)) throw error;
    throw new CofferError('E_STATE_UNAVAILABLE', `cannot migrate the state database ${file}: ${describe(error)}`, {
      subject: { path: file },
      cause: error,
    });
  }
}

async function ensureDatabaseId(db: Kysely<StateSchema>, now: () => number): Promise<string> {
  await db
    .insertInto('meta')
    .values([
      { key: 'database_id', value: randomUUID() },
      { key: 'created_at', value: new Date(now()).toISOString() },
    ])
    .onConflict((c) => c.column('key').doNothing())
    .execute();
  const row = await db.selectFrom('meta').select('value').where('key', '=', 'database_id').executeTakeFirstOrThrow();
  return row.value;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
