/**
 * The events that come from checks, through the real notifier to a local webhook receiver:
 * `rpo.missed` and `disk-space.low` from the health watch (once per condition, again after it
 * cleared; real statfs of a real folder), and `verify.result`, `repository.damage` and
 * `test-restore.result` from real verify and test-restore tasks of the task runner on a real
 * repository, one of whose chunks is then removed.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { LocalBackend, listSnapshots, openRepository } from '../../repo/index.js';
import { makeTempDir, startHttpReceiver, type HttpReceiver } from '../../testing/index.js';
import { Notifier, parseNotificationConfig } from '../notify/index.js';
import { bridgeEvents } from '../service-events.js';
import { JobScheduler } from '../scheduler/index.js';
import { openStateDatabase, type StateDatabase } from '../state/index.js';
import { TaskRunner, type TaskInfo } from '../tasks/index.js';
import { makeRepository, makeVms, runEnded } from '../tasks/task-fixtures.js';
import { HealthWatch, type PastRpo } from './health-watch.js';

const dir = await makeTempDir('coffer-health');
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  await dir.remove();
});

async function notifierTo(name: string): Promise<{ notifier: Notifier; hook: HttpReceiver; state: StateDatabase }> {
  const hook = await startHttpReceiver();
  cleanups.push(() => hook.close());
  const state = await openStateDatabase({ file: join(dir.path, `${name}.db`) });
  const notifier = await Notifier.start({
    db: state.db, pollMs: 25,
    config: parseNotificationConfig({ targets: { hook: { type: 'webhook', url: `${hook.url}/events`, retry: { attempts: 5, initial: '50ms', max: '100ms' } } }, rules: [{ name: 'checks', match: { types: ['rpo.missed', 'disk-space.low', 'verify.result', 'repository.damage', 'test-restore.result'] }, targets: ['hook'] }] }),
  });
  cleanups.push(async () => {
    await notifier.close();
    await state.close();
  });
  return { notifier, hook, state };
}

const bodies = (hook: HttpReceiver) => hook.requests.map((r) => JSON.parse(r.body) as { type: string; severity: string; summary: string; vm?: string; error?: string; repository?: { name: string; freeBytes?: number } });

test('rpo.missed and disk-space.low: told once when they start, again only after they cleared', async () => {
  const { notifier, hook } = await notifierTo('health');
  const watched = join(dir.path, 'watched');
  await mkdir(watched);
  let past: PastRpo[] = [{ vm: 'db1', rpo: '26h', lastBackup: '2026-03-01T00:00:00.000Z', ageMs: 30 * 3_600_000 }, { vm: 'new1', rpo: '1d', lastBackup: null, ageMs: null }];
  // Twice what is free now (real statfs): low, but not below a fifth of the threshold (a
  // warning), however much the tests running beside this one write or delete meanwhile (a
  // margin of 64 MiB was once crossed in CI).
  const fs = await statfs(watched);
  const low = { bytes: 2 * fs.bavail * fs.bsize };
  let minFree: { percent: number } | { bytes: number } = low;
  const errors: unknown[] = [];
  const watch = new HealthWatch({
    emit: (e) => notifier.emit(e), pastRpo: async () => past, minFree: () => minFree, vmTags: (vm) => (vm === 'db1' ? ['sql'] : []), onError: (e) => errors.push(e),
    locations: () => [{ name: 'data directory', repository: false, path: watched }, { name: 'main', repository: true, path: watched }, { name: 'gone', repository: true, path: join(dir.path, 'missing') }],
  });
  await watch.check();
  await hook.waitForRequests(4);
  await watch.check();
  await notifier.idle();
  await new Promise((r) => setTimeout(r, 150));
  let events = bodies(hook);
  assert.deepEqual(events.map((e) => [e.type, e.severity]).sort(), [['disk-space.low', 'warning'], ['disk-space.low', 'warning'], ['rpo.missed', 'warning'], ['rpo.missed', 'warning']], 'each condition once, though checked twice');
  assert.match(events.find((e) => e.vm === 'db1')?.summary ?? '', /db1: recovery point objective 26h missed: its last good backup is 30 h 0 min old/);
  assert.match(events.find((e) => e.vm === 'new1')?.summary ?? '', /it has no backup/);
  const repo = events.find((e) => e.repository?.name === 'main');
  assert.ok((repo?.repository?.freeBytes ?? 0) > 0, 'the repository event carries its free bytes (statfs)');
  assert.equal(errors.length, 2, 'the missing folder is an error at each check, never an event');
  for (const error of errors) assert.match(String((error as Error).message), /ENOENT/);

  // Both clear (an RPO met, space plentiful), then come back: told again.
  past = [];
  minFree = { bytes: 1 };
  await watch.check();
  past = [{ vm: 'db1', rpo: '26h', lastBackup: null, ageMs: null }];
  minFree = low;
  await watch.check();
  await hook.waitForRequests(7);
  await notifier.idle();
  events = bodies(hook);
  assert.equal(events.filter((e) => e.type === 'rpo.missed' && e.vm === 'db1').length, 2);
  assert.equal(events.filter((e) => e.type === 'disk-space.low').length, 4);
});

test('verify.result, repository.damage and test-restore.result from real tasks', async () => {
  const { notifier, hook, state } = await notifierTo('checks');
  const runner = new TaskRunner(state.db, { threads: 1, tickMs: 100, retry: { retries: 0 } });
  cleanups.push(() => runner.close());
  const scheduler = new JobScheduler(state.db, runner, []);
  const bridge = bridgeEvents(runner, scheduler, notifier, { vmTags: () => ['web'], storedBytes: async () => undefined, onError: (e) => assert.fail(String(e)) });
  await runner.start();
  const folder = join(dir.path, 'repo-checks');
  await mkdir(folder);
  const repo = await makeRepository(folder);
  const [vm] = await makeVms(folder, repo, [{ vm: 'web1', host: 'h1' }], 512 * 1024);
  const run = await runner.startRun({ job: null, reason: 'vm', owner: 'test', vms: [vm as NonNullable<typeof vm>] });
  assert.equal((await runEnded(runner, run.id, 30_000)).status, 'succeeded');
  const opened = await openRepository(new LocalBackend(repo.url), { passphrase: 'pw' });
  const [snapshot] = await listSnapshots(opened);
  const dataPrefix = opened.config.version === 2 ? 'packs' : 'chunks';
  await opened.close();
  const repository = { name: 'main', ...repo };
  const wait = async (task: TaskInfo) => runner.waitForTask(task.id, 30_000);

  const restored = await wait(await runner.submitTask({ kind: 'test-restore', owner: 'test', repository: 'main', vm: 'web1', spec: { repository, snapshot: snapshot?.id, fsck: true } }));
  assert.equal(restored.status, 'succeeded', JSON.stringify(restored.error));
  assert.equal((await wait(await runner.submitTask({ kind: 'verify', owner: 'test', repository: 'main', spec: { repository, readData: true } }))).status, 'succeeded');
  // Damage: the first object holding data removed: in format 2 (the default) the run's one
  // pack, so all 8 chunks of the 512 KiB disk (64 KiB blocks) are damaged; in format 1 a chunk.
  const dataDirs = await readdir(join(repo.url, dataPrefix));
  const first = join(repo.url, dataPrefix, dataDirs[0] as string);
  await rm(join(first, (await readdir(first))[0] as string));
  const damaged = await wait(await runner.submitTask({ kind: 'verify', owner: 'test', repository: 'main', spec: { repository, readData: false } }));
  assert.equal(damaged.status, 'failed');
  await hook.waitForRequests(4);
  await bridge.idle();
  await notifier.idle();
  const events = bodies(hook);
  assert.deepEqual(events.map((e) => [e.type, e.severity]), [['test-restore.result', 'info'], ['verify.result', 'info'], ['verify.result', 'error'], ['repository.damage', 'critical']]);
  assert.match(events[0]?.summary ?? '', /test restore of web1 from main passed/);
  assert.equal(events[0]?.vm, 'web1');
  assert.match(events[2]?.summary ?? '', /verify of repository main FAILED/);
  const lost = dataPrefix === 'packs' ? 8 : 1;
  assert.match(events[3]?.summary ?? '', new RegExp(`repository main: verify found ${lost} damaged object`));
  assert.match(events[3]?.error ?? '', /E_VERIFY_FAILED/);
  assert.match(events[3]?.error ?? '', /chunk [0-9a-f]{16}/);
});
