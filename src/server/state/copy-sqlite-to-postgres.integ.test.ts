/**
 * The move from SQLite to PostgreSQL (what `coffer server migrate --from-sqlite` runs), against a real
 * PostgreSQL: every row of every table arrives unchanged (ids, gaps, NULLs, large integers,
 * non-ASCII text), the database keeps its id, new rows get ids past the copied ones, and a
 * copy that cannot be complete changes nothing.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { isCofferError } from '../../errors/index.js';
import { makeTempDir, startPostgres, type TestPostgres } from '../../testing/index.js';
import { copySqliteToPostgres } from './copy-sqlite-to-postgres.js';
import type { Migration } from './migration.js';
import { MIGRATIONS } from './migrations/index.js';
import { readSchemaShape } from './schema-shape.js';
import { openStateDatabase, type StateDatabase } from './state-database.js';

const dir = await makeTempDir('coffer-copy');
let server: TestPostgres;
before(async () => {
  server = await startPostgres();
});
after(async () => {
  await server?.stop();
  await dir.remove();
});

const BIG = 2 ** 53 - 1;
let files = 0;

/** An SQLite state database with rows in every notify and metrics table. */
async function filledSqlite(migrations: readonly Migration[] = MIGRATIONS): Promise<{ file: string; id: string }> {
  const file = join(dir.path, `state-${++files}.db`);
  const state = await openStateDatabase({ file, migrations });
  const db = state.db;
  const event = { type: 'vm.failed', severity: 'error', job: 'nightly', run_id: 'r1', vm: 'wëb-01', host: 'h1', vm_tags: '["prod"]', summary: 'backup of wëb-01 failed ✗', error: 'E_SOURCE: gone\nsecond line', data: '{"task":{"kind":"backup"}}' };
  await db.insertInto('notify_events').values([{ ...event, at: 1 }, { ...event, at: 2 }, { ...event, at: BIG, job: null, run_id: null, vm: null, host: null, error: null }]).execute();
  await db.deleteFrom('notify_events').where('at', '=', 2).execute(); // a gap in the ids
  const outbox = { rule: 'ops', target: 'mail', kind: 'event', dedupe_key: 'k', message: '{"subject":"s"}', status: 'pending', attempts: 0, next_attempt_at: 5, last_error: null, done_at: null };
  await db.insertInto('notify_outbox').values([{ ...outbox, created_at: 3 }, { ...outbox, created_at: 4, status: 'sent', attempts: 2, done_at: 9, last_error: 'timeout' }]).execute();
  const delivery = { target: 'mail', at: 6, outcome: 'failed', error: 'timeout', duration_ms: 1500 };
  await db.insertInto('notify_deliveries').values([{ ...delivery, outbox_id: 2, attempt: 1 }, { ...delivery, outbox_id: 2, attempt: 2, outcome: 'sent', error: null }, { ...delivery, outbox_id: 1, attempt: 1 }]).execute();
  await db.insertInto('notify_state').values({ key: 'summary_due', value: '123' }).execute();
  const figures = { at: 7, logical_bytes: 8 * 2 ** 50 - 4096, read_bytes: 1, new_bytes: 0, stored_bytes: 3, duration_ms: 4 };
  await db.insertInto('metrics_vm_backups').values([{ vm: 'a', job: 'j', ...figures }, { vm: 'b', job: 'j', ...figures }]).execute();
  await db.insertInto('metrics_repositories').values({ repository: 'main', at: 8, stored_bytes: 10, free_bytes: null, total_bytes: null }).execute();
  await db.insertInto('metrics_task_counts').values([{ kind: 'backup', status: 'ok', count: 12 }, { kind: 'verify', status: 'failed', count: 1 }]).execute();
  const id = state.id;
  await state.close();
  return { file, id };
}

/** Every row of every table but the migration record, ordered by all columns. */
async function everyRow(state: StateDatabase): Promise<Record<string, unknown[]>> {
  const db = state.db as unknown as Kysely<unknown>;
  const out: Record<string, unknown[]> = {};
  for (const [table, columns] of Object.entries(await readSchemaShape(db))) {
    if (table === 'coffer_migrations') continue;
    const order = sql.join(columns.map((c) => sql.ref(c.name)));
    out[table] = (await sql`SELECT * FROM ${sql.table(table)} ORDER BY ${order}`.execute(db)).rows;
  }
  return out;
}

test('the copy moves every row of every table, keeps the id, and new ids follow the copied ones', async () => {
  const { file, id } = await filledSqlite();
  const url = await server.createDatabase();
  const report = await copySqliteToPostgres(file, { url, batchRows: 2 });
  assert.equal(report.schemaVersion, MIGRATIONS.at(-1)?.id);
  const order = report.tables.map((t) => t.table);
  assert.ok(order.indexOf('notify_outbox') < order.indexOf('notify_deliveries'), `parents first: ${order.join(', ')}`);
  assert.equal(report.tables.find((t) => t.table === 'notify_deliveries')?.rows, 3);

  const source = await openStateDatabase({ file });
  const target = await openStateDatabase({ url });
  try {
    assert.equal(target.id, id, 'the state database keeps its id');
    const [a, b] = [await everyRow(source), await everyRow(target)];
    assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort());
    for (const table of Object.keys(a)) assert.deepEqual(b[table], a[table], `table ${table}`);
    assert.ok((a.notify_events ?? []).some((r) => (r as { at: number }).at === BIG), 'the large value is in the comparison');
    const next = await target.db
      .insertInto('notify_events')
      .values({ at: 9, type: 't', severity: 'info', job: null, run_id: null, vm: null, host: null, vm_tags: '[]', summary: 's', error: null, data: '{}' })
      .returning('id')
      .executeTakeFirstOrThrow();
    assert.equal(next.id, 4, 'the sequence continues past the largest copied id (3)');
  } finally {
    await source.close();
    await target.close();
  }

  await assert.rejects(copySqliteToPostgres(file, { url }), (e) => isCofferError(e, 'E_STATE_UNAVAILABLE') && /already holds data \(table \w+\)/.test(e.message));
});

test('a copy that fails half-way leaves the PostgreSQL database as it was', async () => {
  const { file } = await filledSqlite();
  const poison = await openStateDatabase({ file });
  await poison.db.insertInto('notify_state').values({ key: 'zz', value: 'ok' }).execute();
  await sql`INSERT INTO metrics_task_counts (kind, status, count) VALUES ('x', 'y', 'not a number')`.execute(poison.db); // SQLite keeps text in an integer column
  await poison.close();
  const url = await server.createDatabase();
  const before = await openStateDatabase({ url });
  await before.close();
  await assert.rejects(copySqliteToPostgres(file, { url }), /not a number|invalid input syntax/);
  const target = await openStateDatabase({ url });
  try {
    const rows = await everyRow(target);
    for (const [table, list] of Object.entries(rows)) if (table !== 'meta') assert.deepEqual(list, [], `${table} is still empty`);
    assert.ok((rows.metrics_repositories ?? []).length === 0 && (rows.notify_outbox ?? []).length === 0, 'tables copied before the bad one are empty again');
    assert.equal(target.id, before.id, 'its own meta is back');
  } finally {
    await target.close();
  }
});

test('schema steps must match: a newer SQLite file is refused, an older one is named with the command that migrates it', async () => {
  const extra: Migration = { id: 1000, name: 'extra', up: async (db) => db.schema.createTable('extra').addColumn('id', 'integer').execute() };
  const newer = await filledSqlite([...MIGRATIONS, extra]);
  await assert.rejects(copySqliteToPostgres(newer.file, { url: await server.createDatabase() }), (e) => isCofferError(e, 'E_STATE_TOO_NEW') && /step 1000/.test(e.message));
  const older = await filledSqlite();
  await assert.rejects(
    copySqliteToPostgres(older.file, { url: await server.createDatabase(), migrations: [...MIGRATIONS, extra] }),
    (e) => isCofferError(e, 'E_STATE_UNAVAILABLE') && e.message.includes(`coffer server migrate --database ${older.file}`),
  );
  await assert.rejects(copySqliteToPostgres(join(dir.path, 'missing.db'), { url: server.url() }), (e) => isCofferError(e, 'E_STATE_UNAVAILABLE') && /missing\.db/.test(e.message));
});
