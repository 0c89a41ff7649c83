/**
 * `coffer server migrate` as a user runs it, against a real PostgreSQL (started here) and an
 * SQLite file: several processes migrating one database at once, `--status`, a newer schema
 * refused, connection errors as one line without the password, and `--from-sqlite`.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { MIGRATIONS, openStateDatabase } from '../server/index.js';
import { freePort, makeTempDir, startPostgres, type TestPostgres } from '../testing/index.js';
import { assertExit, assertOneLineError, coffer, describeRun, startCoffer } from './cli-harness.js';

const dir = await makeTempDir('coffer-cli-migrate');
let server: TestPostgres;
before(async () => {
  server = await startPostgres();
});
after(async () => {
  await server?.stop();
  await dir.remove();
});
const ALL = MIGRATIONS.map((m) => `${m.id}-${m.name}`);

test('three `coffer server migrate` processes started at once on one PostgreSQL database: each step applied once', async () => {
  const url = await server.createDatabase();
  const before = await coffer(['server', 'migrate', '--database', url, '--status', '--json']);
  assertExit(before, 0);
  const pending = JSON.parse(before.stdout.toString()) as { applied: unknown[]; pending: { id: number }[] };
  assert.deepEqual(pending.applied, []);
  assert.deepEqual(pending.pending.map((p) => p.id), MIGRATIONS.map((m) => m.id), '--status applies nothing');

  const runs = await Promise.all([1, 2, 3].map(() => startCoffer(['server', 'migrate', '--database', url, '--json'], { timeoutMs: 30_000 }).done));
  for (const run of runs) assertExit(run, 0);
  const reports = runs.map((r) => JSON.parse(r.stdout.toString('utf8')) as { applied: string[]; id: string });
  assert.deepEqual(reports.flatMap((r) => r.applied).sort(), [...ALL].sort(), `every step once across the processes: ${runs.map((r) => r.stdout).join('')}`);
  assert.equal(new Set(reports.map((r) => r.id)).size, 1, 'one database id for all');

  const status = await coffer(['server', 'migrate', '--database', url, '--status']);
  assertExit(status, 0);
  assert.match(status.stdout.toString(), new RegExp(`applied  ${ALL[0]}`));
  assert.match(status.stdout.toString(), /up to date/);
});

test('an SQLite file migrates the same way; a newer schema exits 20 with one line', async () => {
  const file = join(dir.path, 'state.db');
  // --status changes nothing: no file (nor folder) is made where there is none.
  const none = await coffer(['server', 'migrate', '--database', join(dir.path, 'absent', 'state.db'), '--status']);
  assertExit(none, 20);
  assert.match(assertOneLineError(none), /there is no state database at .*absent\/state\.db/);
  assert.equal(existsSync(join(dir.path, 'absent')), false);
  const run = await coffer(['server', 'migrate', '--database', file]);
  assertExit(run, 0);
  assert.match(run.stdout.toString(), new RegExp(`schema step 0 → ${MIGRATIONS.at(-1)?.id}, applied ${ALL.join(', ')}`));
  const newer = await openStateDatabase({ file, migrations: [...MIGRATIONS, { id: 1000, name: 'later', up: async () => undefined }] });
  await newer.close();
  const refused = await coffer(['server', 'migrate', '--database', file]);
  assertExit(refused, 20);
  assert.match(assertOneLineError(refused), /schema step 1000/);
});

test('connection errors: exit 20, one line naming host and database, never the password; bad usage exits 2', async () => {
  const closedPort = await freePort();
  // (More failures, each checked for the password: postgres-state.integ.test.ts.)
  const run = await coffer(['server', 'migrate', '--database', `postgres://coffer:hunter2@127.0.0.1:${closedPort}/state`]);
  assertExit(run, 20);
  assert.doesNotMatch(run.stderr, /hunter2/, describeRun(run));
  assert.match(assertOneLineError(run), new RegExp(`postgres://coffer@127\\.0\\.0\\.1:${closedPort}/state: .*ECONNREFUSED`));
  const usage = await coffer(['server', 'migrate', '--database', 'mysql://root@db/state']);
  assertExit(usage, 2);
  assert.match(assertOneLineError(usage), /unsupported state database mysql/);
  assertExit(await coffer(['server', 'migrate']), 2);
});

test('--from-sqlite moves a server\'s state into PostgreSQL and prints rows per table; a second run is refused', async () => {
  const file = join(dir.path, 'from.db');
  const source = await openStateDatabase({ file });
  await source.db.insertInto('notify_state').values([{ key: 'a', value: '1' }, { key: 'b', value: '2' }]).execute();
  const id = source.id;
  await source.close();
  const url = await server.createDatabase();
  const run = await coffer(['server', 'migrate', '--from-sqlite', file, '--database', url]);
  assertExit(run, 0);
  assert.match(run.stdout.toString(), /^copied .*from\.db into postgres:\/\/postgres@127\.0\.0\.1:\d+\/\w+ \(schema step \d+\):$/m);
  assert.match(run.stdout.toString(), /^ {2}notify_state: 2 rows$/m);
  const target = await openStateDatabase({ url });
  assert.equal(target.id, id);
  assert.deepEqual(await target.db.selectFrom('notify_state').selectAll().orderBy('key').execute(), [{ key: 'a', value: '1' }, { key: 'b', value: '2' }]);
  await target.close();
  const again = await coffer(['server', 'migrate', '--from-sqlite', file, '--database', url]);
  assertExit(again, 20);
  assert.match(assertOneLineError(again), /already holds data \(table notify_state\)/);
});
