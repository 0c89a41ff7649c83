/**
 * The sweep of ended tasks with the real parts around it: a SQLite state database, the task
 * runner and store, the scheduler, the event bridge and the notifier (a webhook target on a
 * local receiver). Tasks and runs are ended in the database as a worker elsewhere (or a server
 * killed before it notified) leaves them; the sweep's clock is moved by hand.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { VmBackupResult } from '../backup/index.js';
import { makeTempDir, startHttpReceiver } from '../testing/index.js';
import { EventSweep, PAGE, SETTLE_MS, SLACK_MS, SWEEP_STATE_KEY } from './event-sweep.js';
import { Notifier, parseNotificationConfig } from './notify/index.js';
import { JobScheduler } from './scheduler/index.js';
import { bridgeEvents } from './service-events.js';
import { openStateDatabase } from './state/index.js';
import { TaskRunner } from './tasks/index.js';
import { TaskStore } from './tasks/task-store.js';

const dir = await makeTempDir('coffer-sweep');
const receiver = await startHttpReceiver();
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  await receiver.close();
  await dir.remove();
});

const T0 = Date.parse('2026-11-26T03:00:00Z');
let databases = 0;

/** The parts of a server that notify, on a fresh state database; `clock` drives the sweep. */
async function parts(file = join(dir.path, `state-${++databases}.db`)) {
  const state = await openStateDatabase({ file });
  const notifier = await Notifier.start({
    db: state.db,
    pollMs: 60_000, // deliveries are not under test: the outbox is
    config: parseNotificationConfig({
      targets: { hook: { type: 'webhook', url: `${receiver.url}/coffer` } },
      rules: [{ name: 'everything', match: { 'min-severity': 'info' }, targets: ['hook'], 'group-runs': false }],
    }),
  });
  const runner = new TaskRunner(state.db);
  const scheduler = new JobScheduler(state.db, runner, []);
  const errors: unknown[] = [];
  const bridge = bridgeEvents(runner, scheduler, notifier, { vmTags: () => [], storedBytes: async () => undefined, onError: (e) => errors.push(e) });
  const clock = { now: T0 };
  const sweep = new EventSweep({
    db: state.db,
    tasksEndedBetween: (w, limit) => runner.tasksEndedBetween(w, limit),
    runsEndedBetween: (w, limit) => runner.runsEndedBetween(w, limit),
    bridge,
    now: () => clock.now,
    onError: (e) => errors.push(e),
  });
  cleanups.push(async () => {
    await sweep.stop();
    await notifier.close();
    await state.close();
  });
  const store = new TaskStore(state.db);
  const events = async () => state.db.selectFrom('notify_events').select(['type', 'vm', 'run_id', 'task_id']).orderBy('id').execute();
  const outbox = async () => Number((await state.db.selectFrom('notify_outbox').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
  return { file, state, store, runner, bridge, sweep, clock, errors, events, outbox };
}

function result(vm: string): VmBackupResult {
  return {
    snapshot: randomUUID(), vm, host: 'hv1', started: new Date(T0).toISOString(), ended: new Date(T0).toISOString(), durationMs: 1000,
    bytesLogical: 100, bytesRead: 100, bytesNew: 10, bytesStored: 5, throughput: 100, changeRate: 0.1, mode: 'incremental', modeReason: 'test',
    consistency: 'crash', warnings: [], bottleneck: 'source', time: {} as VmBackupResult['time'], parent: null, snapshotTime: new Date(T0).toISOString(),
    backupMs: 900, disks: [], skipped: [],
  } as VmBackupResult;
}

/** A run of `vms` ended in the database at `at`: the first VM succeeded, the others failed. */
async function endedRun(store: TaskStore, at: number, vms: string[]): Promise<{ runId: string; taskIds: string[] }> {
  const runId = randomUUID();
  await store.insertRun({ id: runId, job: 'nightly', reason: 'schedule', status: 'running', owner: 'scheduler', vms }, at - 1000);
  const taskIds: string[] = [];
  for (const [i, vm] of vms.entries()) {
    const id = randomUUID();
    taskIds.push(id);
    await store.insertTask({ id, runId, kind: 'backup', owner: 'scheduler', vm, host: 'hv1', repository: 'main', job: 'nightly', spec: {}, attempt: 1 }, at - 1000);
    await store.markRunning(id, at - 900);
    if (i === 0) await store.finish(id, { status: 'succeeded', now: at - 10, result: result(vm) });
    else await store.finish(id, { status: 'failed', now: at - 10 + i, error: { code: 'E_SOURCE', message: `${vm}: image missing` } });
  }
  await store.endRun(runId, vms.length > 1 ? 'failed' : 'succeeded', 'test', at);
  return { runId, taskIds };
}

test('a run that ended while nobody notified is notified by the next server\'s pass; what the live events already told is not sent again', async () => {
  const first = await parts();
  await first.sweep.pass(); // the first pass on a database only sets the watermark
  assert.equal((await first.state.db.selectFrom('notify_state').select('value').where('key', '=', SWEEP_STATE_KEY).executeTakeFirstOrThrow()).value, String(T0));

  const { runId, taskIds } = await endedRun(first.store, T0 + 2000, ['a', 'b']);
  // The first server's live path told the notifier about a's end only, then it died.
  first.runner.events.emit('task', await first.runner.getTask(taskIds[0] as string));
  await first.bridge.replay([], []);
  assert.deepEqual((await first.events()).map((e) => e.type), ['task.finished', 'vm.succeeded']);

  // The next server (a restart, or the new leader) on the same state database.
  const next = await parts(first.file);
  next.clock.now = T0 + 2000 + SETTLE_MS + 1;
  await next.sweep.pass();
  const events = await next.events();
  assert.deepEqual(events.map((e) => `${e.type} ${e.vm ?? ''}`), ['task.finished ', 'vm.succeeded a', 'task.finished ', 'vm.failed b', 'job.finished ']);
  assert.equal(events.find((e) => e.type === 'vm.failed')?.task_id, taskIds[1]);
  assert.equal(events.find((e) => e.type === 'job.finished')?.run_id, runId);
  assert.equal(await next.outbox(), 5, 'one message per event');

  // Later passes (the window overlaps by the slack) and one more server's pass send nothing new.
  next.clock.now += 60_000;
  await next.sweep.pass();
  const third = await parts(first.file);
  third.clock.now = next.clock.now + 60_000;
  await third.sweep.pass();
  assert.equal((await third.events()).length, 5);
  assert.equal(await third.outbox(), 5);
  assert.deepEqual([...first.errors, ...next.errors, ...third.errors], []);
});

test('a pass waits for the settle time, reaches back by the slack, and leaves older history alone', async () => {
  const p = await parts();
  await p.sweep.pass(); // watermark T0
  const old = await endedRun(p.store, T0 - SLACK_MS - 60_000, ['old']); // ended before the sweep's reach
  const late = await endedRun(p.store, T0 - 60_000, ['late']); // committed after the watermark passed it (a worker's clock behind)
  const fresh = await endedRun(p.store, T0 + 3000, ['fresh']);

  p.clock.now = T0 + 3000 + SETTLE_MS - 100; // fresh ended less than the settle time ago
  await p.sweep.pass();
  const runsNotified = async () => (await p.events()).filter((e) => e.type === 'job.finished').map((e) => e.run_id);
  assert.deepEqual(await runsNotified(), [late.runId]);
  p.clock.now += 200;
  await p.sweep.pass();
  assert.deepEqual(await runsNotified(), [late.runId, fresh.runId]);
  assert.ok(!(await runsNotified()).includes(old.runId));
  assert.deepEqual(p.errors, []);
});

test('more ended tasks than a page, all in the same millisecond: every one is notified once', async () => {
  const p = await parts();
  await p.sweep.pass();
  const at = T0 + 1000;
  const runId = randomUUID();
  const vms = Array.from({ length: PAGE + 37 }, (_, i) => `vm${i}`);
  await p.store.insertRun({ id: runId, job: 'nightly', reason: 'schedule', status: 'running', owner: 'scheduler', vms }, at - 1000);
  for (const vm of vms) {
    const id = randomUUID();
    await p.store.insertTask({ id, runId, kind: 'backup', owner: 'scheduler', vm, host: 'hv1', repository: 'main', job: 'nightly', spec: {}, attempt: 1 }, at - 1000);
    await p.store.finish(id, { status: 'succeeded', now: at, result: result(vm) });
  }
  await p.store.endRun(runId, 'succeeded', 'test', at);
  p.clock.now = at + SETTLE_MS + 1;
  await p.sweep.pass();
  const events = await p.events();
  const succeeded = events.filter((e) => e.type === 'vm.succeeded').map((e) => e.vm);
  assert.equal(succeeded.length, vms.length);
  assert.equal(new Set(succeeded).size, vms.length);
  assert.equal(events.filter((e) => e.type === 'job.finished').length, 1);
  assert.equal(events.at(-1)?.type, 'job.finished', 'the run is told after its VMs');
  assert.deepEqual(p.errors, []);
});
