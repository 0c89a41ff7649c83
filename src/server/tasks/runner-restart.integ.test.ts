/**
 * kill -9 of the task runner's process in the middle of a run, then a restart on the same
 * state database: the tasks it left running are marked interrupted and retried, their workers
 * did not outlive it, and the repository verifies clean.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LocalBackend, listSnapshots, openRepository, verifyRepository } from '../../repo/index.js';
import { makeTempDir } from '../../testing/index.js';
import { makeRepository, makeVms, openState, runEnded, waitFor } from './task-fixtures.js';
import { TaskRunner } from './task-runner.js';

const MiB = 1024 * 1024;
const dir = await makeTempDir('coffer-runner-restart');
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await dir.remove();
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('kill -9 of the runner mid-run: on restart the interrupted VMs are marked and retried, and the repository verifies', async () => {
  const repository = await makeRepository(dir.path);
  const vms = await makeVms(dir.path, repository, [0, 1, 2, 3].map((i) => ({ vm: `restart-${i}`, host: `hv${i}` })), 8 * MiB); // 8 MiB: a backup reads 4 MiB at a time, so progress moves in halves
  const db = join(dir.path, 'state.db');
  const entry = fileURLToPath(new URL('./runner-child.fixture.js', import.meta.url));
  const child = spawn(process.execPath, [entry, JSON.stringify({ db, vms, bandwidth: [{ direction: 'source-read', bytesPerSecond: 2 * MiB }] })], { stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(() => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')));
  const runId = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      out += text;
      if (out.includes('\n')) resolve(out.trim());
    });
    child.once('exit', (code) => reject(new Error(`the runner exited early (${code})`)));
    setTimeout(() => reject(new Error('the runner did not start a run within 15 s')), 15_000).unref();
  });

  const state = await openState(db);
  cleanups.push(() => state.close());
  const observer = new TaskRunner(state.db);
  // Two backups are under way (a fifth of their data read at least) when the runner dies.
  const running = await waitFor('two backups under way', async () => {
    const tasks = (await observer.listTasks({ runId, status: 'running' })).items;
    return tasks.length === 2 && tasks.every((t) => t.progress >= 0.2) ? tasks : undefined;
  }, 20_000);
  const workerPids: number[] = [];
  for (const task of running) {
    const log = await observer.taskLog(task.id);
    const pid = Number(/worker process (\d+)/.exec(log.items.map((l) => l.line).join('\n'))?.[1]);
    assert.ok(pid > 0);
    workerPids.push(pid);
  }
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  // Their channel closed: the workers abort, release their leases and exit on their own.
  await waitFor('the orphaned workers to exit', async () => (workerPids.some(alive) ? undefined : true), 10_000);

  const runner = new TaskRunner(state.db, { threads: 1, tickMs: 100, retry: { retries: 1, delayMs: 0 }, limits: { global: 2 }, bandwidth: [{ direction: 'source-read', bytesPerSecond: 8 * MiB }] });
  cleanups.push(() => runner.close());
  const interrupted = await runner.start();
  assert.deepEqual(interrupted.map((t) => t.id).sort(), running.map((t) => t.id).sort());
  assert.ok(interrupted.every((t) => t.status === 'interrupted' && t.error?.code === 'E_INTERRUPTED'));
  const ended = await runEnded(runner, runId, 30_000);
  assert.equal(ended.status, 'succeeded', ended.detail ?? '');
  const tasks = (await runner.listTasks({ runId })).items;
  for (const task of interrupted) {
    const retry = tasks.find((t) => t.retryOf === task.id);
    assert.equal(retry?.status, 'succeeded', `the retry of ${task.vm}`);
    assert.equal(retry?.attempt, 2);
  }

  const repo = await openRepository(new LocalBackend(repository.url), { passphrase: 'pw', threads: 1 });
  try {
    const snapshots = await listSnapshots(repo);
    assert.deepEqual(snapshots.map((s) => s.vm).sort(), vms.map((v) => v.vm).sort(), 'one snapshot per VM: the killed backups left none');
    const report = await verifyRepository(repo, { readData: true, now: () => new Date() });
    assert.equal(report.damaged.length, 0);
    assert.equal(report.snapshots, 4);
  } finally {
    await repo.close();
  }
});
