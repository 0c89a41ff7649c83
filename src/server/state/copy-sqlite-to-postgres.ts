/**
 * Moves a server's state from its SQLite file to PostgreSQL (the upgrade path of
 * docs/state-database.md): every row of every table, in one PostgreSQL transaction, so the
 * target ends either complete or untouched.
 *
 * Preconditions, each checked before a row moves: the SQLite file is a Coffer state database
 * (opened read-only: it is never changed); the PostgreSQL database is migrated by this Coffer
 * (done here) to exactly the schema steps the file has; both have the same tables and columns
 * (schema-shape.ts); and the target holds no rows yet besides its migration record and its
 * `meta` (which is replaced by the file's, so the state database keeps its id).
 *
 * Order: tables are copied parents first (from SQLite's foreign-key list), rows in batches by
 * primary key order. Values go as read: integers as numbers (as strings beyond 2^53, which
 * PostgreSQL's bigint takes exactly), text, NULL, blobs as bytea. Afterwards each generated-id
 * sequence is set past the largest copied id, so new rows never collide with copied ones.
 */
import Database from 'better-sqlite3';
import { Kysely, sql, SqliteDialect } from 'kysely';
import { CofferError } from '../../errors/index.js';
import type { Migration } from './migration.js';
import { MIGRATIONS } from './migrations/index.js';
import { openStateDatabase, describe } from './state-database.js';
import type { PoolSettings } from './postgres-pool.js';
import { readSchemaShape, type SchemaShape } from './schema-shape.js';

export interface CopyOptions extends PoolSettings {
  /** The PostgreSQL database (`postgres://…`). */
  url: string;
  /** The migrations this Coffer knows (tests pass their own). */
  migrations?: readonly Migration[];
  /** Rows per INSERT (default: as many as fit in 30,000 parameters, at most 1,000). */
  batchRows?: number;
}

export interface CopyReport {
  /** The schema step both databases are at. */
  schemaVersion: number;
  /** Rows copied per table, in the order copied. */
  tables: { table: string; rows: number }[];
  /** Where the rows went (no password). */
  target: string;
}

type AnyDb = Kysely<Record<string, Record<string, unknown>>>;
/** Tables the copy does not move: the migration record is the target's own. */
const NOT_COPIED = new Set(['coffer_migrations']);

/** Copies the SQLite state database `file` into the empty PostgreSQL database `options.url`. */
export async function copySqliteToPostgres(file: string, options: CopyOptions): Promise<CopyReport> {
  if (!/^postgres(ql)?:\/\//i.test(options.url)) throw new CofferError('E_USAGE', 'the copy target must be a postgres:// URL');
  let source: Database.Database;
  try {
    source = new Database(file, { readonly: true, fileMustExist: true });
    source.pragma('query_only = ON');
  } catch (error) {
    throw new CofferError('E_STATE_UNAVAILABLE', `cannot open the SQLite state database ${file}: ${describe(error)}`, { subject: { path: file }, cause: error });
  }
  const sourceDb = new Kysely<unknown>({ dialect: new SqliteDialect({ database: source }) });
  try {
    const sourceSteps = readSourceSteps(source, file);
    const target = await openStateDatabase({ ...options, url: options.url, migrations: options.migrations ?? MIGRATIONS });
    try {
      const targetSteps = await target.db.selectFrom('coffer_migrations').select('id').orderBy('id').execute();
      const sourceTop = Math.max(0, ...sourceSteps);
      const targetTop = Math.max(0, ...targetSteps.map((r) => Number(r.id)));
      if (sourceSteps.join() !== targetSteps.map((r) => Number(r.id)).join()) {
        const code = sourceTop > targetTop ? 'E_STATE_TOO_NEW' : 'E_STATE_UNAVAILABLE';
        const hint = sourceTop > targetTop ? 'run the newer Coffer that migrated it' : `migrate it first: coffer server migrate --database ${file}`;
        throw new CofferError(code, `the SQLite state database ${file} is at schema step ${sourceTop}, ${target.label} at ${targetTop}: ${hint}`, { subject: { path: file } });
      }
      const [from, to] = await Promise.all([readSchemaShape(sourceDb), readSchemaShape(target.db as unknown as Kysely<unknown>)]);
      checkSameShape(from, to, file, target.label);
      const tables = inDependencyOrder(source, Object.keys(from).filter((t) => !NOT_COPIED.has(t)));
      const copied = await (target.db as unknown as AnyDb).transaction().execute(async (trx) => {
        await refuseNonEmpty(trx, tables, target.label);
        await trx.deleteFrom('meta').execute();
        const report: CopyReport['tables'] = [];
        for (const table of tables) {
          const columns = (from[table] ?? []).map((c) => c.name);
          report.push({ table, rows: await copyTable(source, trx, table, columns, options.batchRows) });
        }
        for (const table of tables) await resetSequences(trx, table, to);
        return report;
      });
      return { schemaVersion: targetTop, tables: copied, target: target.label };
    } finally {
      await target.close();
    }
  } finally {
    await sourceDb.destroy();
  }
}

function readSourceSteps(source: Database.Database, file: string): number[] {
  try {
    return source.prepare('SELECT id FROM coffer_migrations ORDER BY id').all().map((r) => Number((r as { id: number }).id));
  } catch (error) {
    throw new CofferError('E_STATE_UNAVAILABLE', `${file} is not a Coffer state database: ${describe(error)}`, { subject: { path: file }, cause: error });
  }
}

function checkSameShape(from: SchemaShape, to: SchemaShape, file: string, label: string): void {
  for (const table of new Set([...Object.keys(from), ...Object.keys(to)])) {
    const a = (from[table] ?? []).map((c) => c.name).join(', ');
    const b = (to[table] ?? []).map((c) => c.name).join(', ');
    if (a !== b) {
      throw new CofferError('E_STATE_UNAVAILABLE', `table ${table} differs: ${file} has (${a || 'no such table'}), ${label} has (${b || 'no such table'}); both must be migrated by the same Coffer`);
    }
  }
}

/** Parents before children, by SQLite's foreign-key list; otherwise by name. */
function inDependencyOrder(source: Database.Database, tables: string[]): string[] {
  const parents = new Map<string, string[]>();
  for (const table of tables) {
    const rows = source.prepare('SELECT "table" AS parent FROM pragma_foreign_key_list(?)').all(table) as { parent: string }[];
    parents.set(table, rows.map((r) => r.parent).filter((p) => p !== table && tables.includes(p)));
  }
  const ordered: string[] = [];
  const visiting = new Set<string>();
  const visit = (table: string) => {
    if (ordered.includes(table)) return;
    if (visiting.has(table)) throw new CofferError('E_STATE_UNAVAILABLE', `tables refer to each other in a cycle through ${table}: cannot order the copy`);
    visiting.add(table);
    for (const parent of parents.get(table) ?? []) visit(parent);
    visiting.delete(table);
    ordered.push(table);
  };
  for (const table of [...tables].sort()) visit(table);
  return ordered;
}

async function refuseNonEmpty(trx: AnyDb, tables: string[], label: string): Promise<void> {
  for (const table of tables) {
    if (table === 'meta') continue;
    const row = await trx.selectFrom(table).select(sql<number>`1`.as('one')).limit(1).executeTakeFirst();
    if (row !== undefined) {
      throw new CofferError('E_STATE_UNAVAILABLE', `${label} already holds data (table ${table}): the copy goes into a new, empty database only`);
    }
  }
}

async function copyTable(source: Database.Database, trx: AnyDb, table: string, columns: string[], batchRows?: number): Promise<number> {
  const perBatch = batchRows ?? Math.max(1, Math.min(1000, Math.floor(30_000 / Math.max(1, columns.length))));
  const list = columns.map((c) => `"${c.replace(/"/g, '""')}"`).join(', ');
  const statement = source.prepare(`SELECT ${list} FROM "${table.replace(/"/g, '""')}" ORDER BY rowid`).safeIntegers(true);
  let count = 0;
  let batch: Record<string, unknown>[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await trx.insertInto(table).values(batch).execute();
    count += batch.length;
    batch = [];
  };
  for (const row of statement.iterate() as Iterable<Record<string, unknown>>) {
    const values: Record<string, unknown> = {};
    for (const column of columns) values[column] = portableValue(row[column]);
    batch.push(values);
    if (batch.length >= perBatch) await flush();
  }
  await flush();
  return count;
}

/** SQLite integers arrive as bigint (exact); pg takes numbers, and exact strings beyond 2^53. */
function portableValue(value: unknown): unknown {
  if (typeof value !== 'bigint') return value;
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
}

async function resetSequences(trx: AnyDb, table: string, shape: SchemaShape): Promise<void> {
  for (const column of shape[table] ?? []) {
    if (!column.primaryKey || column.type !== 'integer') continue;
    // pg_get_serial_sequence is NULL for a column without a sequence; setval(NULL, …) does nothing.
    await sql`SELECT setval(pg_get_serial_sequence(${table}, ${column.name}), COALESCE((SELECT max(${sql.ref(column.name)}) FROM ${sql.table(table)}), 0) + 1, false)`.execute(trx);
  }
}
