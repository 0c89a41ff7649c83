/**
 * The scheduler's run semantics on an injected clock, with a real state database file and the
 * real task runner (VMs on a host whose limit is 0 stay queued, so a run keeps going as long
 * as a test needs; jobs without VMs end at once).
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { makeTempDir } from '../../testing/index.js';
import type { StateDatabase } from '../state/index.js';
import { TaskRunner, type RunInfo, type VmTarget } from '../tasks/index.js';
import { makeRepository, makeVms, openState, runEnded } from '../tasks/task-fixtures.js';
import { JobScheduler, type ScheduledJob } from './job-scheduler.js';

const dir = await makeTempDir('coffer-scheduler');
const open: { runner: TaskRunner; state: StateDatabase }[] = [];
after(async () => {
  for (const { runner, state } of open) {
    await runner.close();
    await state.close();
  }
  await dir.remove();
});

const held: VmTarget = { vm: 'held', host: 'maintenance', repository: { name: 'r', url: join(dir.path, 'none') }, source: { images: ['/nonexistent'] } };
const HELD_LIMITS = { host: { default: 1, overrides: { maintenance: 0 } } };

async function setUp(name: string, options: { retries?: number; now?: () => Date } = {}): Promise<{ state: StateDatabase; runner: TaskRunner }> {
  const state = await openState(join(dir.path, `${name}.db`));
  const runner = new TaskRunner(state.db, { threads: 1, limits: HELD_LIMITS, retry: { retries: options.retries ?? 0 }, ...(options.now ? { now: options.now } : {}) });
  open.push({ runner, state });
  return { state, runner };
}

function clockAt(iso: string): { now: () => Date; set(iso: string): void } {
  let current = new Date(iso);
  return { now: () => current, set: (next) => (current = new Date(next)) };
}

async function runsOf(runner: TaskRunner, job: string): Promise<RunInfo[]> {
  return (await runner.listRuns({ job, limit: 100 })).items.reverse();
}

test('a job never overlaps itself: the firing during a run is recorded as skipped', async () => {
  const { state, runner } = await setUp('overlap');
  const clock = clockAt('2026-03-02T09:59:00Z');
  const job: ScheduledJob = { name: 'hourly', schedule: 'hourly', resolveVms: async () => [held] };
  const scheduler = new JobScheduler(state.db, runner, [job], { now: clock.now, limits: HELD_LIMITS });
  await scheduler.tick();
  assert.deepEqual(await runsOf(runner, 'hourly'), [], 'a new job does not fire for the past');
  clock.set('2026-03-02T10:00:00Z');
  await scheduler.tick();
  clock.set('2026-03-02T11:00:05Z');
  await scheduler.tick();
  let runs = await runsOf(runner, 'hourly');
  assert.deepEqual(runs.map((r) => [r.reason, r.status, r.firing]), [['schedule', 'running', '2026-03-02T10:00:00.000Z'], ['schedule', 'skipped', '2026-03-02T11:00:00.000Z']]);
  assert.match(runs[1]?.detail ?? '', /still going/);
  await runner.cancelRun(runs[0]?.id as string, 'test');
  clock.set('2026-03-02T12:00:00Z');
  await scheduler.tick();
  runs = await runsOf(runner, 'hourly');
  assert.deepEqual(runs.map((r) => r.status), ['cancelled', 'skipped', 'running']);
  assert.equal((await scheduler.scheduleState('hourly'))?.lastRunId, runs[2]?.id);
});

test('missed while down: one run at start with repeat-missed, none (recorded) without', async () => {
  const { state, runner } = await setUp('missed');
  const clock = clockAt('2026-03-02T09:30:00Z');
  const jobs: ScheduledJob[] = [
    { name: 'catch-up', schedule: 'hourly', repeatMissed: true, resolveVms: async () => [] },
    { name: 'no-catch-up', schedule: 'hourly', resolveVms: async () => [] },
  ];
  await new JobScheduler(state.db, runner, jobs, { now: clock.now }).tick();
  // The server is down from 09:30 to 14:30: five firings pass.
  clock.set('2026-03-02T14:30:00Z');
  const restarted = new JobScheduler(state.db, runner, jobs, { now: clock.now });
  await restarted.tick();
  clock.set('2026-03-02T14:31:00Z');
  await restarted.tick();
  assert.deepEqual((await runsOf(runner, 'catch-up')).map((r) => [r.reason, r.firing]), [['missed', '2026-03-02T14:00:00.000Z']], 'once, however many were missed');
  const dropped = await runsOf(runner, 'no-catch-up');
  assert.deepEqual(dropped.map((r) => [r.reason, r.status]), [['missed', 'skipped']]);
  assert.match(dropped[0]?.detail ?? '', /down \(5 firings\)/);
  clock.set('2026-03-02T15:00:00Z');
  await restarted.tick();
  assert.deepEqual((await runsOf(runner, 'no-catch-up')).map((r) => r.reason), ['missed', 'schedule'], 'then it runs on schedule');
});

test('editing a schedule never fires a catch-up run', async () => {
  const { state, runner } = await setUp('edit');
  const clock = clockAt('2026-03-02T00:00:30Z');
  const scheduler = new JobScheduler(state.db, runner, [{ name: 'j', schedule: 'daily', resolveVms: async () => [] }], { now: clock.now });
  await scheduler.tick();
  clock.set('2026-03-02T10:20:00Z');
  scheduler.setJobs([{ name: 'j', schedule: 'hourly', resolveVms: async () => [] }]);
  await scheduler.tick();
  assert.deepEqual(await runsOf(runner, 'j'), [], 'the hourly firings before the edit do not run');
  clock.set('2026-03-02T11:00:00Z');
  await scheduler.tick();
  assert.deepEqual((await runsOf(runner, 'j')).map((r) => r.firing), ['2026-03-02T11:00:00.000Z']);
});

test('a job runs after another one ends; a window ends at its next closing time in the job\'s zone', async () => {
  const { state, runner } = await setUp('after');
  const clock = clockAt('2026-07-01T19:59:00Z');
  const jobs: ScheduledJob[] = [
    { name: 'first', schedule: '22:00', timeZone: 'Europe/Berlin', window: '22:00-05:00', resolveVms: async () => [held] },
    { name: 'second', after: 'first', resolveVms: async () => [] },
  ];
  const scheduler = new JobScheduler(state.db, runner, jobs, { now: clock.now, limits: HELD_LIMITS });
  await scheduler.tick();
  clock.set('2026-07-01T20:00:00Z'); // 22:00 in Berlin (summer time)
  await scheduler.tick();
  const [first] = await runsOf(runner, 'first');
  assert.equal(first?.windowEnd, '2026-07-02T03:00:00.000Z', '05:00 the next morning, Berlin time');
  assert.deepEqual(await runsOf(runner, 'second'), []);
  const fired = new Promise<RunInfo>((resolve) => scheduler.events.once('fired', resolve));
  await runner.cancelRun(first?.id as string, 'test');
  assert.equal((await fired).reason, 'after:first');
  assert.deepEqual((await runsOf(runner, 'second')).map((r) => r.reason), ['after:first']);
});

test('on demand: a whole job, one VM, or just the VMs that failed last time', async () => {
  const { state, runner } = await setUp('on-demand');
  await runner.start();
  const repository = await makeRepository(join(dir.path));
  const [good] = await makeVms(dir.path, repository, [{ vm: 'good', host: 'hv1' }], 128 * 1024);
  const bad: VmTarget = { vm: 'bad', host: 'hv2', repository: { name: 'main', ...repository }, source: { images: [join(dir.path, 'missing.raw')] } };
  const scheduler = new JobScheduler(state.db, runner, [{ name: 'j', resolveVms: async () => [good as VmTarget, bad] }]);
  const whole = await runEnded(runner, (await scheduler.runJob('j', 'alice')).id, 30_000);
  assert.equal(whole.status, 'failed');
  const failedTask = (await runner.listTasks({ runId: whole.id })).items.find((t) => t.vm === 'bad');
  assert.equal(failedTask?.error?.code, 'E_SOURCE_UNREADABLE');
  const again = await scheduler.runFailedAgain('j', 'alice');
  assert.deepEqual([again.reason, again.vms, again.owner], ['failed-again', ['bad'], 'alice']);
  await runEnded(runner, again.id, 30_000);
  await writeFile(join(dir.path, 'missing.raw'), Buffer.alloc(64 * 1024, 1));
  const one = await runEnded(runner, (await scheduler.runVm('j', 'bad', 'bob')).id, 30_000);
  assert.deepEqual([one.reason, one.vms, one.status], ['vm', ['bad'], 'succeeded']);
  await assert.rejects(scheduler.runVm('j', 'nope', 'bob'), /does not cover VM nope/);
});

test('forecast: the next run replayed with each VM\'s last duration says which VM overruns the window', async () => {
  const { state, runner } = await setUp('forecast');
  const at = (iso: string) => new Date(iso).getTime();
  await state.db.insertInto('vm_state').values([
    { vm: 'f1', last_success_at: at('2026-03-01T22:10:00Z'), missed_window: 0, last_duration_ms: 40 * 60_000 },
    { vm: 'f2', last_success_at: at('2026-03-01T22:50:00Z'), missed_window: 0, last_duration_ms: 40 * 60_000 },
  ]).execute();
  const vm = (name: string): VmTarget => ({ ...held, vm: name, host: 'hv' });
  const scheduler = new JobScheduler(state.db, runner, [{ name: 'n', schedule: '22:00', window: '22:00-23:00', resolveVms: async () => [vm('f1'), vm('f2'), vm('f3')] }]);
  const { firing, windowEnd, forecast } = await scheduler.forecast('n', { after: new Date('2026-03-02T12:00:00Z'), defaultDurationMs: 10 * 60_000 });
  assert.equal(firing.toISOString(), '2026-03-02T22:00:00.000Z');
  assert.equal(windowEnd?.toISOString(), '2026-03-02T23:00:00.000Z');
  assert.deepEqual(forecast.entries.map((e) => [e.task.vm, e.outcome, e.start?.toISOString().slice(11, 16)]), [['f3', 'fits', '22:00'], ['f1', 'fits', '22:10'], ['f2', 'overruns', '22:50']]);
});

test('history retention forgets old runs with their tasks and logs, never a run still going', async () => {
  const clock = clockAt('2026-03-01T00:00:00Z');
  const { state, runner } = await setUp('history', { now: clock.now });
  const old = await runner.startRun({ job: 'j', reason: 'on-demand', owner: 't', vms: [] });
  const going = await runner.startRun({ job: 'j', reason: 'on-demand', owner: 't', vms: [held] });
  const [heldTask] = (await runner.listTasks({ runId: going.id })).items;
  await runner.cancelTask(heldTask?.id as string, 't');
  const oldCancelled = await runner.getRun(going.id);
  assert.equal(oldCancelled.status, 'cancelled');
  const kept = await runner.startRun({ job: 'j', reason: 'on-demand', owner: 't', vms: [{ ...held, vm: 'held-2' }] });
  clock.set('2026-03-10T00:00:00Z');
  const recent = await runner.startRun({ job: 'j', reason: 'on-demand', owner: 't', vms: [] });
  assert.equal(await runner.forgetHistory(7 * 86_400_000), 2);
  assert.deepEqual((await runner.listRuns({ job: 'j' })).items.map((r) => r.id).sort(), [kept.id, recent.id].sort());
  await assert.rejects(runner.getRun(old.id), /no run/);
  await assert.rejects(runner.getTask(heldTask?.id as string), /no task/);
  const logs = await state.db.selectFrom('task_log').select('task_id').where('task_id', '=', heldTask?.id as string).execute();
  assert.deepEqual(logs, []);
});
