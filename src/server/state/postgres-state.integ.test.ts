/**
 * The state database on a real PostgreSQL (started here): opening by URL, the migration lock
 * with several openers racing, refusal of a newer schema, a failed
 * step rolled back whole, and connection errors as one line that names the database and never
 * the password.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { isCofferError } from '../../errors/index.js';
import { freePort, startPostgres, type TestPostgres } from '../../testing/index.js';
import type { Migration } from './migration.js';
import { MIGRATIONS } from './migrations/index.js';
import { openStateDatabase } from './state-database.js';

let server: TestPostgres;
before(async () => {
  server = await startPostgres();
});
after(() => server?.stop());

const widgets: Migration = {
  id: 1000,
  name: 'widgets',
  async up(db) {
    await db.schema.createTable('widgets').addColumn('id', 'integer', (c) => c.primaryKey()).execute();
  },
};

test('a new PostgreSQL database is migrated, gets a stable id, and its connections are tagged coffer', async () => {
  const url = await server.createDatabase();
  const first = await openStateDatabase({ url, poolSize: 2 });
  assert.equal(first.dialect, 'postgres');
  assert.equal(first.label, `postgres://postgres@127.0.0.1:${server.port}/${url.split('/').at(-1)}`);
  assert.deepEqual(first.migrations, { from: 0, to: MIGRATIONS.at(-1)?.id, applied: MIGRATIONS.map((m) => `${m.id}-${m.name}`) });
  const apps = await sql<{ application_name: string }>`SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()`.execute(first.db);
  assert.equal(apps.rows[0]?.application_name, 'coffer');
  const timeout = await sql<{ statement_timeout: string }>`SHOW statement_timeout`.execute(first.db);
  assert.equal(timeout.rows[0]?.statement_timeout, '30s');
  const idle = await sql<{ idle_in_transaction_session_timeout: string }>`SHOW idle_in_transaction_session_timeout`.execute(first.db);
  assert.equal(idle.rows[0]?.idle_in_transaction_session_timeout, '10s');
  await first.close();
  const database = url.split('/').at(-1) as string;
  const overSocket = `postgres://postgres@/${database}?host=${encodeURIComponent(server.dir)}&port=${server.port}`;
  const again = await openStateDatabase({ url: overSocket });
  assert.deepEqual(again.migrations.applied, []);
  assert.equal(again.id, first.id, 'the same database over the unix socket');
  assert.equal(again.label, `postgres://postgres@/${database} (host ${server.dir})`);
  await again.close();
});

test('four openers on separate pools racing through slow steps: each step runs once, all four succeed', async () => {
  const url = await server.createDatabase();
  const slow = (id: number): Migration => ({
    id,
    name: `slow-${id}`,
    async up(db) {
      await db.schema.createTable(`slow_${id}`).addColumn('id', 'integer').execute();
      await sql`SELECT pg_sleep(0.2)`.execute(db);
    },
  });
  const migrations = [...MIGRATIONS, slow(1000), slow(1001)];
  const opened = await Promise.all([1, 2, 3, 4].map(() => openStateDatabase({ url, migrations, poolSize: 1 })));
  try {
    const applied = opened.flatMap((s) => s.migrations.applied).sort();
    assert.deepEqual(applied, migrations.map((m) => `${m.id}-${m.name}`).sort());
  } finally {
    await Promise.all(opened.map((s) => s.close()));
  }
});

test('a database migrated by a newer Coffer is refused, on PostgreSQL too', async () => {
  const url = await server.createDatabase();
  await (await openStateDatabase({ url, migrations: [...MIGRATIONS, widgets] })).close();
  await assert.rejects(openStateDatabase({ url }), (e) => isCofferError(e, 'E_STATE_TOO_NEW') && /1000/.test(e.message));
});

test('a session that goes quiet inside a transaction (a process cut off mid-hand-out) is ended by the server after idleInTransactionMs, and its locks with it', async () => {
  const url = await server.createDatabase();
  const quiet = await openStateDatabase({ url, poolSize: 1, idleInTransactionMs: 300 });
  const other = await openStateDatabase({ url, poolSize: 1 });
  const key = 0x636f6666_0a;
  try {
    let locked!: () => void;
    const lockHeld = new Promise<void>((resolve) => (locked = resolve));
    let wakeUp!: () => void;
    const quietUntil = new Promise<void>((resolve) => (wakeUp = resolve));
    const quietTransaction = quiet.db.transaction().execute(async (trx) => {
      await sql`SELECT pg_advisory_xact_lock(${key})`.execute(trx);
      locked();
      await quietUntil; // no statement, no commit: a link gone dead looks the same to the server
      await sql`SELECT 1`.execute(trx);
    });
    const outcome = quietTransaction.then(() => 'committed', (e: Error) => e.message);
    await lockHeld;
    // Without the server ending the quiet session this waits for the statement timeout (30 s) and fails.
    await other.db.transaction().execute((trx) => sql`SELECT pg_advisory_xact_lock(${key})`.execute(trx));
    wakeUp();
    // Its connection was ended (pg reports it as "not queryable"): what it did is rolled back, never half-committed.
    assert.match(await outcome, /idle-in-transaction timeout|connection error/);
    // The pool replaces the ended connection: the quiet process goes on once it is back.
    assert.equal((await sql<{ one: number }>`SELECT 1 AS one`.execute(quiet.db)).rows[0]?.one, 1);
  } finally {
    await quiet.close();
    await other.close();
  }
});

test('a migration step has its own deadline: longer than the pool\'s statement timeout, and still finite', async () => {
  const slow: Migration = { id: 1002, name: 'slow', up: async (db) => void (await sql`SELECT pg_sleep(0.5)`.execute(db)) };
  const patient = await openStateDatabase({ url: await server.createDatabase(), migrations: [...MIGRATIONS, slow], statementTimeoutMs: 200 });
  assert.ok(patient.migrations.applied.includes('1002-slow'));
  await assert.rejects(sql`SELECT pg_sleep(0.5)`.execute(patient.db), /statement timeout/, 'outside migrations the pool\'s timeout holds');
  await patient.close();
  await assert.rejects(
    openStateDatabase({ url: await server.createDatabase(), migrations: [...MIGRATIONS, slow], migrationStepTimeoutMs: 200 }),
    (e) => isCofferError(e, 'E_STATE_UNAVAILABLE') && /statement timeout/.test(e.message),
  );
});

test('a step that fails leaves no trace on PostgreSQL: neither its tables nor its record', async () => {
  const url = await server.createDatabase();
  const broken: Migration = {
    id: 1001,
    name: 'broken',
    async up(db) {
      await db.schema.createTable('half_done').addColumn('id', 'integer').execute();
      throw new Error('disk on fire');
    },
  };
  await assert.rejects(openStateDatabase({ url, migrations: [...MIGRATIONS, broken] }), (e) => isCofferError(e, 'E_STATE_UNAVAILABLE') && /disk on fire/.test(e.message) && e.message.includes(url.split('/').at(-1) as string));
  const state = await openStateDatabase({ url });
  const left = await sql`SELECT 1 FROM information_schema.tables WHERE table_name = 'half_done'`.execute(state.db);
  assert.equal(left.rows.length, 0);
  assert.equal((await state.db.selectFrom('coffer_migrations').select('id').where('id', '=', 1001).execute()).length, 0);
  await state.close();
});

test('an unreachable server or a missing database: one line naming host and database, never the password', async () => {
  const closedPort = await freePort();
  const cases = [
    { url: `postgres://coffer:hunter2@127.0.0.1:${closedPort}/state`, says: new RegExp(`postgres://coffer@127\\.0\\.0\\.1:${closedPort}/state: .*ECONNREFUSED`) },
    { url: `postgresql://postgres:hunter2@127.0.0.1:${server.port}/no_such_db`, says: /postgres:\/\/postgres@127\.0\.0\.1:\d+\/no_such_db: database "no_such_db" does not exist/ },
  ];
  for (const { url, says } of cases) {
    await assert.rejects(openStateDatabase({ url, connectTimeoutMs: 3000 }), (e) => {
      assert.ok(isCofferError(e, 'E_STATE_UNAVAILABLE'), String(e));
      assert.match(e.message, says);
      assert.doesNotMatch(e.message, /hunter2|\n/);
      assert.doesNotMatch(JSON.stringify(e.subject), /hunter2/);
      return true;
    });
  }
  await assert.rejects(openStateDatabase({ url: 'mysql://root@db/state' }), (e) => isCofferError(e, 'E_USAGE') && /unsupported state database mysql/.test(e.message));
});

test('a bigint beyond 2^53 fails its query instead of coming back rounded', async () => {
  const url = await server.createDatabase();
  const state = await openStateDatabase({ url });
  await assert.rejects(sql`SELECT 9007199254740993::bigint AS n`.execute(state.db), /9007199254740993/);
  assert.deepEqual((await sql<{ n: number }>`SELECT 9007199254740991::bigint AS n`.execute(state.db)).rows, [{ n: 9007199254740991 }]);
  await state.close();
  // Other pg users in the process keep pg's default (strings).
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  assert.deepEqual((await client.query('SELECT 5::bigint AS n')).rows, [{ n: '5' }]);
  await client.end();
});
