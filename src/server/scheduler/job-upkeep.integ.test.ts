/**
 * A job's upkeep with the real task runner, its worker processes and a real repository: the
 * verify, test-restore and prune schedules fire on an injected clock (not before, once), and
 * the retention policy is applied after each run (keep-last 1 leaves one snapshot), or with
 * four eyes only a dry run and an approval request (nothing removed).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { LocalBackend, listSnapshots, openRepository } from '../../repo/index.js';
import { BOOT_MARK, buildBootDisk, makeTempDir, requireTools } from '../../testing/index.js';
import type { StateDatabase } from '../state/index.js';
import { TaskRunner, type TaskInfo, type VmTarget } from '../tasks/index.js';
import { makeRepository, makeVms, openState, runEnded, waitFor } from '../tasks/task-fixtures.js';
import { JobUpkeep, type UpkeepJob } from './job-upkeep.js';
import { UpkeepScheduleStore } from './upkeep-schedule-store.js';

const dir = await makeTempDir('coffer-upkeep');
const open: { runner: TaskRunner; state: StateDatabase }[] = [];
after(async () => {
  for (const { runner, state } of open) {
    await runner.close();
    await state.close();
  }
  await dir.remove();
});

async function setUp(name: string): Promise<{ runner: TaskRunner; repo: { url: string; passphraseFile: string }; vm: VmTarget }> {
  const state = await openState(join(dir.path, `${name}.db`));
  const runner = new TaskRunner(state.db, { threads: 1, tickMs: 100, retry: { retries: 0 } });
  open.push({ runner, state });
  await runner.start();
  const folder = join(dir.path, name);
  const { mkdir } = await import('node:fs/promises');
  await mkdir(folder);
  const repo = await makeRepository(folder);
  const [vm] = await makeVms(folder, repo, [{ vm: 'vm1', host: 'h1' }], 256 * 1024);
  return { runner, repo, vm: vm as VmTarget };
}

async function snapshotsIn(url: string): Promise<number> {
  const repo = await openRepository(new LocalBackend(url), { passphrase: 'pw' });
  try {
    return (await listSnapshots(repo)).length;
  } finally {
    await repo.close();
  }
}

async function backUp(runner: TaskRunner, vm: VmTarget, job: string): Promise<void> {
  const run = await runner.startRun({ job, reason: 'on-demand', owner: 'test', vms: [vm] });
  assert.equal((await runEnded(runner, run.id, 30_000)).status, 'succeeded');
}

const ended = async (runner: TaskRunner, task: TaskInfo) => runner.waitForTask(task.id, 30_000);

test('verify, test-restore and prune fire when their schedules do, once, as real tasks that succeed', async () => {
  const { runner, repo, vm } = await setUp('schedules');
  await backUp(runner, vm, 'other');
  let now = new Date('2026-03-02T01:59:00Z');
  const job: UpkeepJob = {
    name: 'nightly', repository: { name: 'main', ...repo }, timeZone: 'Europe/Paris',
    verify: { schedule: '03:00', subset: '100%' }, testRestore: { schedule: 'sun 04:00' },
    retention: { policy: { last: 5 }, pruneSchedule: '05:00' },
    vms: async () => ['vm1', 'not-backed-up'],
  };
  const snapshot = (await listSnapshotsOf(repo.url))[0] as string;
  const upkeep = new JobUpkeep(runner, [job], { now: () => now, fourEyes: () => false, requestApproval: async () => assert.fail('no approval without four eyes'), latestSnapshot: async (_r, v) => (v === 'vm1' ? snapshot : undefined) });
  const started: TaskInfo[] = [];
  upkeep.events.on('started', (t: TaskInfo) => started.push(t));
  upkeep.events.on('error', (e: unknown) => assert.fail(String(e)));
  await upkeep.tick();
  now = new Date('2026-03-02T01:59:59Z'); // 02:59:59 in Paris
  await upkeep.tick();
  assert.equal(started.length, 0, 'nothing is due before 03:00 in the job zone');
  now = new Date('2026-03-02T02:00:00Z');
  await upkeep.tick();
  await upkeep.tick();
  assert.deepEqual(started.map((t) => t.kind), ['verify'], 'verify fires once at 03:00 Paris time');
  const verify = await ended(runner, started[0] as TaskInfo);
  assert.equal(verify.status, 'succeeded', JSON.stringify(verify.error));
  assert.ok(Number(verify.report?.figures['chunksRead']) > 0, 'the subset 100% reads the data back');
  now = new Date('2026-03-02T04:00:00Z'); // 05:00 Paris, a Monday: prune, no test restore
  await upkeep.tick();
  assert.deepEqual(started.map((t) => t.kind), ['verify', 'prune']);
  assert.equal((await ended(runner, started[1] as TaskInfo)).status, 'succeeded');
  now = new Date('2026-03-08T03:00:00Z'); // Sunday 04:00 Paris
  await upkeep.tick();
  assert.deepEqual(started.map((t) => t.kind), ['verify', 'prune', 'verify', 'test-restore', 'prune'], 'the verify and prune due since fire once each; test-restore only for the VM with a snapshot');
  const restore = await ended(runner, started[3] as TaskInfo);
  assert.equal(restore.vm, 'vm1');
  assert.equal(restore.status, 'succeeded', JSON.stringify(restore.error));
  for (const task of started) assert.equal((await ended(runner, task)).status, 'succeeded');
  await upkeep.stop();
});

test('retention after each run: keep-last 1 leaves one snapshot; the second forget prunes (prune-after-forgets 2)', async () => {
  const { runner, repo, vm } = await setUp('retention');
  const job: UpkeepJob = { name: 'nightly', repository: { name: 'main', ...repo }, retention: { policy: { last: 1 }, pruneAfterForgets: 2 }, vms: async () => ['vm1'] };
  const upkeep = new JobUpkeep(runner, [job], { fourEyes: () => false, requestApproval: async () => assert.fail('no approval without four eyes'), latestSnapshot: async () => undefined });
  const started: TaskInfo[] = [];
  upkeep.events.on('started', (t: TaskInfo) => started.push(t));
  await backUp(runner, vm, 'nightly');
  await waitFor('the first forget', async () => started[0], 10_000);
  assert.equal((await ended(runner, started[0] as TaskInfo)).report?.figures['removed'], 0);
  await backUp(runner, vm, 'unrelated');
  await backUp(runner, vm, 'nightly');
  await waitFor('the second forget', async () => started[1], 10_000);
  const second = await ended(runner, started[1] as TaskInfo);
  assert.equal(second.status, 'succeeded', JSON.stringify(second.error));
  assert.equal(second.report?.figures['removed'], 2);
  assert.ok(second.report?.summary.includes('then'), `the second forget prunes: ${second.report?.summary ?? ''}`);
  assert.equal(await snapshotsIn(repo.url), 1);
  await upkeep.stop();
});

test('with four eyes, retention only dry-runs and asks for approval of the real forget; nothing is removed', async () => {
  const { runner, repo, vm } = await setUp('four-eyes');
  const approvals: { operation: string; args: Record<string, unknown>; summary: string }[] = [];
  const job: UpkeepJob = { name: 'nightly', repository: { name: 'main', ...repo }, retention: { policy: { last: 1 } }, vms: async () => ['vm1'] };
  const upkeep = new JobUpkeep(runner, [job], { fourEyes: () => true, requestApproval: async (operation, args, summary) => void approvals.push({ operation, args, summary }), latestSnapshot: async () => undefined });
  await backUp(runner, vm, 'nightly');
  await waitFor('the first dry run', async () => (upkeep.idle(), (await runner.listTasks({ limit: 10 })).items.find((t) => t.kind === 'forget')), 10_000);
  await upkeep.idle();
  assert.equal(approvals.length, 0, 'nothing to remove: no approval asked');
  await backUp(runner, vm, 'nightly');
  await waitFor('the approval request', async () => approvals[0], 30_000);
  assert.equal(approvals[0]?.operation, 'repository.forget');
  assert.deepEqual(approvals[0]?.args.spec, { repository: { name: 'main', ...repo }, policy: { last: 1 }, vm: 'vm1', dryRun: false, prune: false });
  assert.match(approvals[0]?.summary ?? '', /remove 1 snapshot\(s\) of VM vm1/);
  assert.equal(await snapshotsIn(repo.url), 2);
  await upkeep.stop();
});

test('a verify due while the server was stopped runs once at the next start (its schedule kept in the state database), an edited one does not catch up', async () => {
  const { runner, repo, vm } = await setUp('restart');
  await backUp(runner, vm, 'other');
  const db = (open.at(-1) as { state: StateDatabase }).state.db;
  const job: UpkeepJob = { name: 'nightly', repository: { name: 'main', ...repo }, verify: { schedule: '03:00' }, vms: async () => ['vm1'] };
  const options = { fourEyes: () => false, requestApproval: async () => assert.fail('no approval'), latestSnapshot: async () => undefined, store: new UpkeepScheduleStore(db) };
  // The first server: up on Monday 02:00 UTC, stopped before 03:00.
  let now = new Date('2026-03-02T02:00:00Z');
  const first = new JobUpkeep(runner, [job], { ...options, now: () => now });
  await first.tick();
  await first.stop();
  // Down over two 03:00 firings; the next server starts on Wednesday 12:00.
  now = new Date('2026-03-04T12:00:00Z');
  const second = new JobUpkeep(runner, [job], { ...options, now: () => now });
  const started: TaskInfo[] = [];
  second.events.on('started', (t: TaskInfo) => started.push(t));
  second.events.on('error', (e: unknown) => assert.fail(String(e)));
  await second.tick();
  await second.tick();
  assert.deepEqual(started.map((t) => t.kind), ['verify'], 'one verify for the two missed firings');
  assert.equal((await ended(runner, started[0] as TaskInfo)).status, 'succeeded');
  now = new Date('2026-03-04T13:00:00Z');
  await second.tick();
  assert.equal(started.length, 1, 'nothing more until the next firing');
  await second.stop();
  // A third start the same day: the catch-up is settled in the database, it does not run again.
  const third = new JobUpkeep(runner, [job], { ...options, now: () => now });
  third.events.on('started', (t: TaskInfo) => started.push(t));
  await third.tick();
  assert.equal(started.length, 1, 'the settled state survives the restart');
  await third.stop();
  // An edited schedule counts from the edit: its earlier firings never catch up.
  now = new Date('2026-03-06T12:00:00Z');
  const edited = new JobUpkeep(runner, [{ ...job, verify: { schedule: '04:00' } }], { ...options, now: () => now });
  edited.events.on('started', (t: TaskInfo) => started.push(t));
  await edited.tick();
  assert.equal(started.length, 1, 'no catch-up after an edit');
  await edited.stop();
  const row = await db.selectFrom('upkeep_schedule_state').selectAll().where('chore', '=', 'nightly/verify').executeTakeFirstOrThrow();
  assert.equal(row.schedule, '04:00');
  assert.equal(Number(row.last_fired), Date.parse('2026-03-04T03:00:00Z'));
});

test('test-restore.boot: the job\'s test restore boots the VM from its backup (QEMU, TCG) and waits for its console text', async () => {
  await requireTools('qemu-system-x86_64', 'syslinux');
  const state = await openState(join(dir.path, 'boot.db'));
  const runner = new TaskRunner(state.db, { threads: 1, tickMs: 100, retry: { retries: 0 } });
  open.push({ runner, state });
  await runner.start();
  const { mkdir } = await import('node:fs/promises');
  await mkdir(join(dir.path, 'boot'));
  const repo = await makeRepository(join(dir.path, 'boot'));
  const vm: VmTarget = { vm: 'bootable', host: 'h1', repository: { name: 'main', ...repo }, source: { images: [await buildBootDisk()] } };
  await backUp(runner, vm, 'other');
  const [snapshot] = await listSnapshotsOf(repo.url);
  let now = new Date('2026-03-02T01:00:00Z');
  const job: UpkeepJob = { name: 'nightly', repository: { name: 'main', ...repo }, testRestore: { schedule: '02:00', boot: { expect: BOOT_MARK, accel: 'tcg', timeoutMs: 120_000 } }, vms: async () => ['bootable'] };
  const upkeep = new JobUpkeep(runner, [job], { now: () => now, fourEyes: () => false, requestApproval: async () => assert.fail('no approval'), latestSnapshot: async () => snapshot });
  const started: TaskInfo[] = [];
  upkeep.events.on('started', (t: TaskInfo) => started.push(t));
  await upkeep.tick();
  now = new Date('2026-03-02T02:00:00Z');
  await upkeep.tick();
  assert.deepEqual(started.map((t) => t.kind), ['test-restore']);
  const done = await runner.waitForTask((started[0] as TaskInfo).id, 180_000);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  const boot = (done.report?.detail as { boot?: { passed: boolean; serialTail: string } } | undefined)?.boot;
  assert.equal(boot?.passed, true);
  assert.match(boot?.serialTail ?? '', new RegExp(BOOT_MARK));
  await upkeep.stop();
});

async function listSnapshotsOf(url: string): Promise<string[]> {
  const repo = await openRepository(new LocalBackend(url), { passphrase: 'pw' });
  try {
    return (await listSnapshots(repo)).map((s) => s.id);
  } finally {
    await repo.close();
  }
}
