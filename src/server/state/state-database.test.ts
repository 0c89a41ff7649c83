import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { isCofferError } from '../../errors/index.js';
import type { Migration } from './migration.js';
import { MIGRATIONS } from './migrations/index.js';
import { openStateDatabase } from './state-database.js';

const dir = await mkdtemp(join(tmpdir(), 'coffer-state-'));
after(() => rm(dir, { recursive: true, force: true }));

async function tables(db: Kysely<unknown>): Promise<string[]> {
  const rows = await sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`.execute(db);
  return rows.rows.map((r) => r.name);
}

const widgets: Migration = {
  id: 1000,
  name: 'widgets',
  async up(db) {
    await db.schema.createTable('widgets').addColumn('id', 'integer', (c) => c.primaryKey()).execute();
  },
};

test('a new database is created, migrated to the newest step, and given a stable id', async () => {
  const file = join(dir, 'new', 'state.db');
  const first = await openStateDatabase({ file });
  assert.equal(first.migrations.from, 0);
  assert.equal(first.migrations.to, MIGRATIONS.at(-1)?.id);
  assert.equal(first.migrations.applied.length, MIGRATIONS.length);
  assert.ok((await tables(first.db as unknown as Kysely<unknown>)).includes('meta'));
  const id = first.id;
  await first.close();

  const again = await openStateDatabase({ file });
  assert.deepEqual(again.migrations.applied, [], 'nothing left to apply on reopen');
  assert.equal(again.id, id, 'the id survives a restart');
  await again.close();
});

test('an upgrade applies only the new steps, in order', async () => {
  const file = join(dir, 'upgrade.db');
  await (await openStateDatabase({ file })).close();
  const upgraded = await openStateDatabase({ file, migrations: [...MIGRATIONS, widgets] });
  assert.deepEqual(upgraded.migrations.applied, ['1000-widgets']);
  assert.ok((await tables(upgraded.db as unknown as Kysely<unknown>)).includes('widgets'));
  await upgraded.close();
});

test('a database migrated by a newer Coffer is refused, not misread', async () => {
  const file = join(dir, 'newer.db');
  await (await openStateDatabase({ file, migrations: [...MIGRATIONS, widgets] })).close();
  await assert.rejects(openStateDatabase({ file }), (e) => isCofferError(e, 'E_STATE_TOO_NEW') && /1000/.test(e.message));
});

test('a step that fails leaves no trace: neither its changes nor its record', async () => {
  const file = join(dir, 'failing.db');
  const broken: Migration = {
    id: 1001,
    name: 'broken',
    async up(db) {
      await db.schema.createTable('half_done').addColumn('id', 'integer').execute();
      throw new Error('disk on fire');
    },
  };
  await assert.rejects(openStateDatabase({ file, migrations: [...MIGRATIONS, broken] }), (e) => isCofferError(e, 'E_STATE_UNAVAILABLE') && /disk on fire/.test(e.message));
  const reopened = await openStateDatabase({ file });
  assert.ok(!(await tables(reopened.db as unknown as Kysely<unknown>)).includes('half_done'));
  await reopened.close();
});

test('a file that is not a database gives a clear error', async () => {
  const file = join(dir, 'not-a-db');
  const { writeFile } = await import('node:fs/promises');
  await writeFile(file, 'this is not SQLite, just text long enough to have a header page'.repeat(20));
  await assert.rejects(openStateDatabase({ file }), (e) => isCofferError(e, 'E_STATE_UNAVAILABLE') && e.message.includes(file));
});
