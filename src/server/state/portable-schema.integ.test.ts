/**
 * Every migration in MIGRATIONS, on both engines: a real PostgreSQL (started here) and an
 * SQLite file. The two schemas must have the same tables and columns (names, order, type
 * family, NOT NULL, primary key) and only portable types, so a migration merged later that
 * works on one engine only, or creates something different on each, fails here.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { makeTempDir, startPostgres, type TestPostgres } from '../../testing/index.js';
import { forbidUpdateAndDelete, idColumn, idReferenceType } from './dialect.js';
import type { Migration } from './migration.js';
import { MIGRATIONS } from './migrations/index.js';
import { PORTABLE_TYPES, readSchemaShape } from './schema-shape.js';
import { openStateDatabase, type StateDatabase } from './state-database.js';

const dir = await makeTempDir('coffer-portable');
let pg: TestPostgres;
before(async () => {
  pg = await startPostgres();
});
after(async () => {
  await pg?.stop();
  await dir.remove();
});

/** Opens a fresh database on each engine with `migrations`, runs `fn` on both, closes them. */
async function onBoth(migrations: readonly Migration[], fn: (sqlite: StateDatabase, postgres: StateDatabase) => Promise<void>): Promise<void> {
  const sqlite = await openStateDatabase({ file: join(dir.path, `${Math.random().toString(36).slice(2)}.db`), migrations });
  const postgres = await openStateDatabase({ url: await pg.createDatabase(), migrations });
  try {
    await fn(sqlite, postgres);
  } finally {
    await sqlite.close();
    await postgres.close();
  }
}

test('every migration applies on PostgreSQL and on SQLite, and both get the same tables and columns', async () => {
  await onBoth(MIGRATIONS, async (sqlite, postgres) => {
    assert.equal(sqlite.dialect, 'sqlite');
    assert.equal(postgres.dialect, 'postgres');
    const all = MIGRATIONS.map((m) => `${m.id}-${m.name}`);
    assert.deepEqual(postgres.migrations.applied, all);
    assert.deepEqual(sqlite.migrations.applied, all);
    const a = await readSchemaShape(sqlite.db as unknown as Kysely<unknown>);
    const b = await readSchemaShape(postgres.db as unknown as Kysely<unknown>);
    assert.ok(Object.keys(a).includes('notify_outbox') && Object.keys(a).length >= 9, `tables: ${Object.keys(a).join(', ')}`);
    assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort(), 'the same tables');
    for (const [table, columns] of Object.entries(a)) {
      assert.deepEqual(b[table], columns, `table ${table}: PostgreSQL's columns differ from SQLite's`);
      for (const c of columns) assert.ok(PORTABLE_TYPES.includes(c.type), `${table}.${c.name} has the non-portable type ${c.type} (use ${PORTABLE_TYPES.join(', ')})`);
    }
  });
});

test('the schema comparison sees a difference (a migration that creates a column on one engine only)', async () => {
  const skewed: Migration = {
    id: 1000,
    name: 'skewed',
    async up(db, context) {
      let table = db.schema.createTable('skewed').addColumn('id', 'integer', (c) => c.primaryKey());
      if (context.dialect === 'postgres') table = table.addColumn('extra', 'text');
      await table.execute();
    },
  };
  await onBoth([...MIGRATIONS, skewed], async (sqlite, postgres) => {
    const a = await readSchemaShape(sqlite.db as unknown as Kysely<unknown>);
    const b = await readSchemaShape(postgres.db as unknown as Kysely<unknown>);
    assert.notDeepEqual(b.skewed, a.skewed);
  });
});

test('generated ids count up from 1 on both engines and come back as numbers; a reference column takes them', async () => {
  const ledger: Migration = {
    id: 1001,
    name: 'ledger',
    async up(db, context) {
      await db.schema.createTable('ledger').$call(idColumn(context)).addColumn('at', 'bigint', (c) => c.notNull()).execute();
      await db.schema
        .createTable('ledger_notes')
        .$call(idColumn(context))
        .addColumn('ledger_id', idReferenceType(context), (c) => c.notNull().references('ledger.id').onDelete('cascade'))
        .execute();
      await forbidUpdateAndDelete(db, 'ledger_notes', context);
    },
  };
  await onBoth([...MIGRATIONS, ledger], async (...dbs) => {
    for (const state of dbs) {
      const db = state.db as unknown as Kysely<{ ledger: { id?: number; at: number }; ledger_notes: { id?: number; ledger_id: number } }>;
      const big = 2 ** 52 + 1; // beyond int4, exact as a double
      const first = await db.insertInto('ledger').values({ at: big }).returning('id').executeTakeFirstOrThrow();
      const second = await db.insertInto('ledger').values({ at: 2 }).returning('id').executeTakeFirstOrThrow();
      assert.deepEqual([first.id, second.id], [1, 2], state.dialect);
      const row = await db.selectFrom('ledger').select('at').where('id', '=', 1).executeTakeFirstOrThrow();
      const count = await db.selectFrom('ledger').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
      assert.deepEqual({ ...row, ...count }, { at: big, n: 2 }, `${state.dialect}: bigint and count(*) as numbers`);
      await db.insertInto('ledger_notes').values({ ledger_id: 1 }).execute();
      await assert.rejects(db.insertInto('ledger_notes').values({ ledger_id: 99 }).execute(), `${state.dialect}: the foreign key holds`);
      // The append-only table refuses changes, and so does a cascade from its parent.
      await assert.rejects(db.updateTable('ledger_notes').set({ ledger_id: 2 }).execute(), /ledger_notes is append-only/);
      await assert.rejects(db.deleteFrom('ledger_notes').execute(), /ledger_notes is append-only/);
      await assert.rejects(db.deleteFrom('ledger').where('id', '=', 1).execute(), /ledger_notes is append-only/);
      if (state.dialect === 'postgres') await assert.rejects(sql`TRUNCATE ledger_notes`.execute(db), /ledger_notes is append-only/);
      assert.equal((await db.selectFrom('ledger_notes').selectAll().execute()).length, 1);
    }
  });
});
