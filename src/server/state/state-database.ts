/**
 * The service's state database: opened, migrated to the newest schema, and handed to callers
 * as a Kysely instance typed by {@link StateSchema}. Two engines behind the same type:
 *
 * - SQLite, the embedded default: one file in the server's data directory (better-sqlite3, WAL
 *   mode so readers never wait for the writer, synchronous=FULL so a committed change survives
 *   a power cut: the audit log must not lose what it promised);
 * - PostgreSQL (`postgres://…`), shared by several servers and workers (#10): a `pg` pool
 *   (postgres-pool.ts).
 *
 * Callers see only Kysely and write portable queries (docs/state-database.md); `dialect` says
 * which engine it is for the rare query that must differ.
 */
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { Kysely, PostgresDialect, sql, SqliteDialect } from 'kysely';
import { CofferError, isCofferError } from '../../errors/index.js';
import { makeFoldersSync } from '../../native/index.js';
import type { StateDialect } from './dialect.js';
import type { Migration } from './migration.js';
import { MIGRATIONS } from './migrations/index.js';
import { createPostgresPool, type PoolSettings } from './postgres-pool.js';
import { runMigrations, type MigrationReport, type RunMigrationsOptions } from './run-migrations.js';
import type { StateSchema } from './schema.js';
import { parseStateTarget } from './state-target.js';

/** A connected state database, not migrated ({@link connectStateDatabase}). */
export interface StateConnection {
  readonly db: Kysely<StateSchema>;
  readonly dialect: StateDialect;
  /** Where it is, for messages: the file, or `postgres://user@host:port/db` (no password). */
  readonly label: string;
  close(): Promise<void>;
}

/** An open, migrated state database. */
export interface StateDatabase extends StateConnection {
  /** The database's own id, made when it was created (stable across restarts and upgrades). */
  readonly id: string;
  /** What opening it migrated. */
  readonly migrations: MigrationReport;
}

/** How to reach the database: exactly one of `url` and `file`. */
export type StateLocation = { url: string; file?: undefined } | { file: string; url?: undefined };

export type ConnectStateOptions = StateLocation &
  PoolSettings & {
    /** SQLite: how long to wait for another process's write lock before giving up, ms. */
    busyTimeoutMs?: number;
    /** SQLite: a missing file (or folder) is an error, not made (a status query changes nothing). */
    mustExist?: boolean;
  };

export type OpenStateOptions = ConnectStateOptions & {
  /** The migrations to apply; all of Coffer's by default (tests pass their own lists). */
  migrations?: readonly Migration[];
  /** PostgreSQL: the statement timeout while migrating (see {@link RunMigrationsOptions}). */
  migrationStepTimeoutMs?: number;
  now?: () => number;
};

/**
 * Connects to the database at `url` (`postgres://…`, `postgresql://…`, or an SQLite path,
 * created with its folder when missing) or `file` (an SQLite path), and checks that it
 * answers. Throws E_STATE_UNAVAILABLE naming the place (never a password) when it cannot,
 * E_USAGE for a location that is neither.
 */
export async function connectStateDatabase(options: ConnectStateOptions): Promise<StateConnection> {
  const target = parseStateTarget(options.url ?? options.file);
  if (target.dialect === 'sqlite') {
    const { file } = target;
    let sqlite: Database.Database;
    try {
      if (options.mustExist === true && file !== ':memory:' && !existsSync(file)) {
        throw new CofferError('E_STATE_UNAVAILABLE', `there is no state database at ${file} (coffer server migrate, or the server's first start, makes it)`, { subject: { path: file } });
      }
      if (file !== ':memory:') makeFoldersSync(dirname(file));
      sqlite = new Database(file, { timeout: options.busyTimeoutMs ?? 10_000, fileMustExist: options.mustExist === true });
      sqlite.pragma('journal_mode = WAL');
      sqlite.pragma('synchronous = FULL');
      sqlite.pragma('foreign_keys = ON');
    } catch (error) {
      if (error instanceof CofferError) throw error;
      throw new CofferError('E_STATE_UNAVAILABLE', `cannot open the state database ${file}: ${describe(error)}`, { subject: { path: file }, cause: error });
    }
    const db = new Kysely<StateSchema>({ dialect: new SqliteDialect({ database: sqlite }) });
    return { db, dialect: 'sqlite', label: file, close: () => db.destroy() };
  }
  const db = new Kysely<StateSchema>({ dialect: new PostgresDialect({ pool: createPostgresPool(target.url, options) }) });
  try {
    await sql`SELECT 1`.execute(db);
  } catch (error) {
    await db.destroy().catch(() => undefined);
    throw new CofferError('E_STATE_UNAVAILABLE', `cannot connect to the state database ${target.label}: ${describe(error)}`, { subject: { object: target.label } });
  }
  return { db, dialect: 'postgres', label: target.label, close: () => db.destroy() };
}

/** Connects ({@link connectStateDatabase}), brings the schema up to date, and reads the database's id. */
export async function openStateDatabase(options: OpenStateOptions): Promise<StateDatabase> {
  const connection = await connectStateDatabase(options);
  const { db, label } = connection;
  try {
    const now = options.now ?? Date.now;
    const migrations = await runMigrations(db, options.migrations ?? MIGRATIONS, { now, ...(options.migrationStepTimeoutMs === undefined ? {} : { stepTimeoutMs: options.migrationStepTimeoutMs }) });
    const id = await ensureDatabaseId(db, now);
    return { ...connection, id, migrations };
  } catch (error) {
    await connection.close().catch(() => undefined);
    if (isCofferError(error)) throw error;
    throw new CofferError('E_STATE_UNAVAILABLE', `cannot migrate the state database ${label}: ${describe(error)}`, {
      subject: connection.dialect === 'sqlite' ? { path: label } : { object: label },
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

/** One line: pg and net errors may be multi-line, or an AggregateError with an empty message. */
export function describe(error: unknown): string {
  if (error instanceof AggregateError && error.message === '') return error.errors.map(describe).join('; ');
  const text = error instanceof Error ? error.message || (error as NodeJS.ErrnoException).code || error.name : String(error);
  return text.replace(/\s*\n\s*/g, ' ');
}
