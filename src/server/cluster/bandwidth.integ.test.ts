/**
 * Bandwidth rules across workers (issue #10: "the layered limits … and bandwidth rules hold
 * across all workers together"): two real `coffer worker` processes on a real PostgreSQL, one
 * backup each at the same time, under one `source-read` rule — scoped to their two hosts (say a
 * SAN behind both), or unscoped. The rule's rate must be shared by the two backups, not given to each: each
 * worker counts the backups under the rule across the cluster (docs/scale.md), not only its own.
 * Bytes over time is the measure here, as in task-runner.integ's bandwidth test; only an upper
 * bound is asserted (a loaded machine slows backups, it cannot speed them up).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { makeTempDir, startPostgres, type TestPostgres } from '../../testing/index.js';
import { openStateDatabase, type StateDatabase } from '../state/index.js';
import { makeRepository, makeVms, runEnded } from '../tasks/task-fixtures.js';
import { TaskRunner, type BandwidthRule } from '../tasks/index.js';
import { publishPolicy } from './cluster-policy.js';
import { startWorkerProcesses, type WorkerProcesses } from './night-run.js';
import { maxOverlap } from './task-timeline.js';

const MiB = 1024 * 1024;
const RATE = 1 * MiB;

const dir = await makeTempDir('coffer-cluster-bandwidth');
let pg: TestPostgres;
let state: StateDatabase;
let server: TaskRunner;
let workers: WorkerProcesses | undefined;
let url: string;
let repository: { url: string; passphraseFile: string };

before(async () => {
  pg = await startPostgres();
  url = await pg.createDatabase();
  state = await openStateDatabase({ url });
  server = new TaskRunner(state.db, { dispatch: false });
  await server.start();
  repository = await makeRepository(dir.path);
});

after(async () => {
  await workers?.kill();
  await server?.close();
  await state?.close();
  await pg?.stop();
  await dir.remove();
});

const CASES: { name: string; rule: BandwidthRule }[] = [
  { name: 'a source-read rule scoped to two hosts (a SAN behind both)', rule: { direction: 'source-read', bytesPerSecond: RATE, hosts: ['hv0', 'hv1'] } },
  { name: 'an unscoped source-read rule', rule: { direction: 'source-read', bytesPerSecond: RATE } },
];

for (const [i, c] of CASES.entries()) {
  test(`${c.name}, one backup of each host on two workers at once: they share its rate, not take it each`, async (t) => {
    // Fresh workers: they read the policy at start.
    await workers?.kill();
    await publishPolicy(state.db, { limits: { host: { default: 1 } }, bandwidth: [c.rule], retry: { retries: 0 } });
    workers = await startWorkerProcesses(state.db, url, { count: 2, tasks: 1, prefix: `bw${i}-`, leaseS: 3 });
    const vms = await makeVms(dir.path, repository, [{ vm: `san-a-${i}`, host: 'hv0' }, { vm: `san-b-${i}`, host: 'hv1' }], 4 * MiB);
    const run = await server.startRun({ job: null, reason: 'on-demand', owner: 'test', vms });
    const ended = await runEnded(server, run.id, 120_000);
    assert.equal(ended.status, 'succeeded', `${ended.detail ?? ''}\n${workers.output()}`);
    const rows = await state.db.selectFrom('tasks').selectAll().where('run_id', '=', run.id).execute();
    assert.equal(new Set(rows.map((r) => r.worker)).size, 2, 'one backup on each worker');
    assert.equal(maxOverlap(rows), 2, 'the two backups ran at the same time');
    const results = (await server.listTasks({ runId: run.id, limit: 10 })).items.map((task) => task.result);
    const bytes = results.reduce((sum, r) => sum + (r?.bytesRead ?? 0), 0);
    const from = Math.min(...results.map((r) => Date.parse(r?.started ?? '')));
    const to = Math.max(...results.map((r) => Date.parse(r?.ended ?? '')));
    const measured = bytes / ((to - from) / 1000);
    t.diagnostic(`both backups together read ${(measured / MiB).toFixed(2)} MiB/s under a rule of ${RATE / MiB} MiB/s`);
    // Each worker giving its backup the whole rate reads at about twice it. Until a worker's next
    // heartbeat (a second) the first one may still hold the whole rate: hence 1.4, not 1.15.
    assert.ok(measured <= 1.4 * RATE, `both backups together read ${(measured / MiB).toFixed(2)} MiB/s under a rule of ${RATE / MiB} MiB/s`);
  });
}
