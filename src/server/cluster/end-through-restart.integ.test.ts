/**
 * A task's end across a PostgreSQL outage longer than a lease, with a real PostgreSQL
 * (startPostgres, stopped and started again) and two real `coffer worker` processes that both
 * reach the one host: the backup ends while the database is down, so its worker can neither
 * record the end nor renew its lease. Once the database is back, the end must be recorded by
 * that worker (one snapshot, attempt 1), not handed to the other worker as an expired lease
 * (a second backup of the VM). And the guarantee on the other side holds: a worker killed
 * while the database is down still loses its task, which completes on the other worker.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { LocalBackend, listSnapshots, openRepository } from '../../repo/index.js';
import { makeTempDir, startPostgres, type TestPostgres } from '../../testing/index.js';
import { openStateDatabase, type StateDatabase } from '../state/index.js';
import { makeRepository, makeVms, waitFor } from '../tasks/task-fixtures.js';
import { TaskRunner, type RunInfo } from '../tasks/index.js';
import { publishPolicy } from './cluster-policy.js';
import { WorkerRegistry } from './worker-registry.js';

const MiB = 1024 * 1024;
const CLI = fileURLToPath(new URL('../../../../bin/coffer.js', import.meta.url));
// Long enough that a backup that has opened its repository (8 MiB at 8 MiB/s left) ends, even on
// a loaded machine, before its worker, cut off from the database, would stop it (no heartbeat for
// a lease: at least 8 s after the database went down); the outage is then longer than a lease.
const LEASE_MS = 12_000;

const dir = await makeTempDir('coffer-end-restart');
const repository = await makeRepository(dir.path);
let pg: TestPostgres;
let state: StateDatabase;
let server: TaskRunner;
const workers = new Map<string, { child: ChildProcess; output: string[] }>();

before(async () => {
  pg = await startPostgres();
  const url = await pg.createDatabase();
  state = await openStateDatabase({ url });
  server = new TaskRunner(state.db, { dispatch: false });
  await server.start();
  // 8 MiB at 8 MiB/s: a backup runs for a second or more, the database goes down before it ends.
  await publishPolicy(state.db, { limits: { host: { default: 1 } }, bandwidth: [{ direction: 'source-read', bytesPerSecond: 8 * MiB }], retry: { retries: 0 } });
  for (const name of ['wa', 'wb']) {
    const child = spawn(process.execPath, [CLI, 'worker', '--database', url, '--name', name, '--hosts', 'hv0', '--tasks', '1', '--lease', String(LEASE_MS / 1000), '--stop-timeout', '5'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const output: string[] = [];
    child.stdout?.setEncoding('utf8').on('data', (t: string) => output.push(t));
    child.stderr?.setEncoding('utf8').on('data', (t: string) => output.push(t));
    workers.set(name, { child, output });
  }
  const registry = new WorkerRegistry(state.db);
  await waitFor('two workers registered', async () => ((await registry.list(10_000)).filter((w) => w.alive).length === 2 ? true : undefined), 20_000);
});

after(async () => {
  for (const { child } of workers.values()) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await server?.close();
  await state?.close();
  await pg?.stop();
  await dir.remove();
});

function said(): string {
  return [...workers].map(([name, w]) => `== ${name}\n${w.output.join('')}`).join('\n');
}

async function snapshotsOf(vm: string): Promise<number> {
  const repo = await openRepository(new LocalBackend(repository.url), { passphrase: 'pw', threads: 1 });
  try {
    return (await listSnapshots(repo, { vm })).length;
  } finally {
    await repo.close?.();
  }
}

/** Starts a run of one 8 MiB VM on hv0 and returns it with its task once a worker took it. */
async function backupUnderWay(vm: string) {
  const [target] = await makeVms(dir.path, repository, [{ vm, host: 'hv0' }], 8 * MiB);
  const run = await server.startRun({ job: 'nightly', reason: 'on-demand', owner: 'test', vms: [target as NonNullable<typeof target>] });
  // Handed out is enough: 8 MiB at 8 MiB/s take a second, and its groups of 4 MiB are read
  // side by side (progress moves only near the end).
  const task = await waitFor('the backup handed out', async () => (await state.db.selectFrom('tasks').selectAll().where('run_id', '=', run.id).execute())
    .find((r) => r.status === 'running' && r.worker !== null), 30_000).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}\n${said()}`);
  });
  return { run, task };
}

/** The run once it ended (this process's pooled connections were cut too: a read may fail once). */
async function ended(runId: string): Promise<RunInfo> {
  try {
    return await waitFor('the run ends', async () => {
      const now = await server.getRun(runId).catch(() => undefined);
      return now !== undefined && now.status !== 'running' ? now : undefined;
    }, 60_000);
  } catch (error) {
    const rows = await state.db.selectFrom('tasks').selectAll().where('run_id', '=', runId).execute();
    const logs = await Promise.all(rows.map(async (r) => (await server.taskLog(r.id)).items.map((l) => l.line).join('\n')));
    throw new Error(`${(error as Error).message}\n${JSON.stringify(rows)}\n${logs.join('\n')}\n${said()}`);
  }
}

const taskRow = (id: string) => state.db.selectFrom('tasks').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

test('a backup that ends while PostgreSQL is down (longer than a lease) is recorded by its worker once the database is back, not run a second time', async () => {
  const { run, task } = await backupUnderWay('through-restart');
  // Its worker process has opened the repository (the backup's lease is there): what is left,
  // 8 MiB at 8 MiB/s, ends well before the worker would stop it for want of a heartbeat.
  await waitFor('the backup\'s repository lease', async () => ((await readdir(join(repository.url, 'leases')).catch(() => [])).length > 0 ? true : undefined), 30_000);
  const down = Date.now();
  let up = 0;
  await pg.restart({
    whileDown: async () => {
      // The backup ends with the database away: its snapshot is in the repository, its end not recorded.
      await waitFor('the snapshot written', async () => ((await snapshotsOf('through-restart')) === 1 ? true : undefined), 30_000).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}\n${said()}`);
      });
      // Then stay away a lease more: on the database's clock the task's lease has run out, and a
      // worker that gave up recording after a lease has given up.
      await new Promise((resolve) => setTimeout(resolve, LEASE_MS + 1000));
      up = Date.now();
    },
  });
  const end = await ended(run.id);
  assert.equal(end.status, 'succeeded', `${end.detail ?? ''}\n${said()}`);
  const row = await taskRow(task.id);
  const log = (await server.taskLog(task.id)).items.map((l) => l.line).join('\n');
  assert.equal(row.status, 'succeeded');
  assert.equal(Number(row.attempt), 1, `not taken back as an expired lease\n${log}\n${said()}`);
  assert.ok(Number(row.ended_at) >= down && Number(row.ended_at) <= up, `the backup ended while the database was down (${down}..${up}), at ${String(row.ended_at)}`);
  assert.equal(row.worker, task.worker, 'recorded by the worker that ran it');
  assert.equal(await snapshotsOf('through-restart'), 1, 'exactly one snapshot');
});

test('a worker killed while PostgreSQL is down loses its task all the same: after the restart it completes on the other worker', async () => {
  const { run, task } = await backupUnderWay('killed-while-down');
  const victim = workers.get(task.worker as string) as { child: ChildProcess };
  await pg.restart({
    whileDown: async () => {
      victim.child.kill('SIGKILL');
      await waitFor('the worker gone', async () => (victim.child.exitCode !== null || victim.child.signalCode !== null ? true : undefined), 10_000);
    },
  });
  const end = await ended(run.id);
  assert.equal(end.status, 'succeeded', `${end.detail ?? ''}\n${said()}`);
  const row = await taskRow(task.id);
  assert.equal(row.status, 'succeeded');
  assert.equal(Number(row.attempt), 2, 'retried once, as attempt 2');
  assert.notEqual(row.worker, task.worker);
  const log = (await server.taskLog(task.id)).items.map((l) => l.line).join('\n');
  assert.match(log, new RegExp(`lease of worker ${String(task.worker)} expired`));
  assert.ok(await snapshotsOf('killed-while-down') >= 1);
});
