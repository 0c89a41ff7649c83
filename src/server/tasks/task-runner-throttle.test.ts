/**
 * The latency guard slowing running backups, through the task runner with a real SQLite state
 * database and fake workers (handed out as an agent's, `remote`) whose progress reports the
 * test writes and whose rate changes it records, on an injected clock.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { makeTempDir } from '../../testing/index.js';
import type { WorkerHandle, WorkerListener, WorkerOutcome, WorkerRates } from '../worker/index.js';
import { openState, waitFor } from './task-fixtures.js';
import { TaskRunner, type RemoteWorkers, type TaskRunnerOptions } from './task-runner.js';
import type { BandwidthRule } from './bandwidth-rules.js';

const MiB = 1024 * 1024;
const TOTAL = 1000 * MiB;
const dir = await makeTempDir('coffer-task-throttle');
after(() => dir.remove());

/** One fake worker: the rates it started with and every change sent to it since. */
interface FakeWorker {
  started: WorkerRates;
  sent: WorkerRates[];
  listener: WorkerListener;
}

/** A runner whose backups run in fake workers; `at(ms)` sets its clock; `report` sends the one worker's progress at that time. */
async function throttledRunner(name: string, options: Partial<TaskRunnerOptions>) {
  const workers: FakeWorker[] = [];
  const remote: RemoteWorkers = {
    agentOf: () => 'fake',
    online: () => true,
    waitDeadline: (created) => created + 60_000,
    offlineError: () => ({ code: 'E_AGENT_OFFLINE', message: 'offline' }),
    start: (task, listener): WorkerHandle => {
      const worker: FakeWorker = { started: task.rates, sent: [], listener };
      workers.push(worker);
      let end: (outcome: WorkerOutcome) => void = () => {};
      const ended = new Promise<WorkerOutcome>((resolve) => (end = resolve));
      const stop = () => end({ kind: 'error', code: 'E_CANCELLED', message: 'stopped by the test' });
      return { pid: undefined, ended, setRates: (rates) => worker.sent.push(rates), cancel: stop, kill: stop };
    },
  };
  let clock = Date.parse('2026-03-02T12:00:00Z');
  const state = await openState(join(dir.path, `${name}.db`));
  const runner = new TaskRunner(state.db, { tickMs: 60_000, now: () => new Date(clock), remote, ...options });
  await runner.start();
  await runner.startRun({ job: null, reason: 'on-demand', owner: 'test', vms: [{ vm: name, host: 'hv', datastore: 'san', repository: { name: 'main', url: '/nowhere' }, source: { images: ['/nowhere.raw'] } }] });
  const worker = await waitFor('the fake worker', async () => workers[0], 5000);
  const start = clock;
  return {
    runner, worker,
    /**
     * Reports `read` bytes read from the source so far with a mean read latency at `ms` after
     * the start, and `done` bytes done (by default as many: a full backup reads all it passes);
     * returns the read rate last sent (MiB/s).
     */
    report(ms: number, read: number, latencyMs: number | undefined, done = read): number | undefined {
      clock = start + ms;
      worker.listener.onProgress?.({ done, total: TOTAL, sourceBytesRead: read, ...(latencyMs === undefined ? {} : { latencyMs }) });
      const rates = worker.sent.at(-1) ?? worker.started;
      return rates.sourceRead === undefined ? undefined : rates.sourceRead / MiB;
    },
    async close() {
      await runner.close();
      await state.close();
    },
  };
}

const readRule = (mib: number): BandwidthRule => ({ direction: 'source-read', bytesPerSecond: mib * MiB });
const writeRule: BandwidthRule = { direction: 'repository-write', bytesPerSecond: 3 * MiB };

test('slow reads halve a running backup\'s read rate down to the floor; the smaller of cap and rule wins; back under the threshold the cap rises and is dropped', async () => {
  const t = await throttledRunner('throttled', { bandwidth: [readRule(8), writeRule], latencyGuard: { thresholdMs: 20 } });
  try {
    assert.deepEqual(t.worker.started, { sourceRead: 8 * MiB, repositoryWrite: 3 * MiB });
    let done = 0;
    const reads: (number | undefined)[] = [];
    reads.push(t.report(0, done, 5));
    // Slow: 8 MiB read in the last second → 4 MiB/s, then half the cap each slow report, to the 1 MiB/s floor.
    for (const [ms, read] of [[1000, 8], [2000, 4], [3000, 2], [4000, 1], [5000, 1]] as const) reads.push(t.report(ms, (done += read * MiB), 50));
    assert.deepEqual(reads, [8, 4, 2, 1, 1, 1]);
    assert.equal(t.runner.runningWorkers()[0]?.readCap, 1 * MiB);

    // A rule change keeps the cap; a rule slower than the cap wins; the write rule is never touched.
    t.runner.setPolicies({ bandwidth: [readRule(16), writeRule] });
    assert.deepEqual(t.worker.sent.at(-1), { sourceRead: 1 * MiB, repositoryWrite: 3 * MiB }, 'a faster rule does not wipe the cap');
    t.runner.setPolicies({ bandwidth: [readRule(0.5), writeRule] });
    assert.deepEqual(t.worker.sent.at(-1), { sourceRead: 0.5 * MiB, repositoryWrite: 3 * MiB }, 'a rule slower than the cap wins');
    t.runner.setPolicies({ bandwidth: [readRule(8), writeRule] });
    assert.deepEqual(t.worker.sent.at(-1), { sourceRead: 1 * MiB, repositoryWrite: 3 * MiB });

    // Under the threshold: ×1.5 per report while it reads at its cap, dropped once that reaches the 8 MiB/s share.
    const rising: (number | undefined)[] = [];
    let cap = 1;
    for (let ms = 6000; ms <= 11_000; ms += 1000) {
      rising.push(t.report(ms, (done += cap * MiB), 5));
      cap = rising.at(-1) as number;
    }
    assert.deepEqual(rising, [1.5, 2.25, 3.375, 5.0625, 7.59375, 8]);
    assert.equal(t.runner.runningWorkers()[0]?.readCap, undefined, 'the cap is dropped');
    assert.deepEqual(t.worker.sent.at(-1), { sourceRead: 8 * MiB, repositoryWrite: 3 * MiB });

    // Its last block read: whatever cap it had is released with its read share.
    t.report(12_000, done += 8 * MiB, 50);
    assert.equal(t.runner.runningWorkers()[0]?.readCap, 4 * MiB);
    t.report(13_000, TOTAL, 50);
    assert.equal(t.runner.runningWorkers()[0]?.readCap, undefined);
    assert.deepEqual(t.worker.sent.at(-1), { sourceRead: 8 * MiB, repositoryWrite: 3 * MiB });
  } finally {
    await t.close();
  }
});

test('without a rule the cap comes from the rate achieved, stops at a configured floor, and is dropped when the reads stay under it', async () => {
  const t = await throttledRunner('floor', { latencyGuard: { thresholdMs: 20, minBytesPerSecond: 3 * MiB } });
  try {
    assert.deepEqual(t.worker.started, {});
    assert.equal(t.report(0, 0, 50), undefined, 'no rate measured yet: nothing to halve');
    assert.equal(t.report(1000, 20 * MiB, 50), 10);
    assert.equal(t.report(2000, 30 * MiB, 50), 5);
    assert.equal(t.report(3000, 35 * MiB, 50), 3, 'not below the floor');
    assert.equal(t.report(4000, 36 * MiB, 50), 3);
    // Reads at 1 MiB/s under the threshold: a 4.5 MiB/s cap would not bind.
    assert.equal(t.report(5000, 37 * MiB, 5), undefined);
    assert.deepEqual(t.worker.sent.map((r) => r.sourceRead === undefined ? undefined : r.sourceRead / MiB), [10, 5, 3, undefined]);
  } finally {
    await t.close();
  }
});

test('an incremental\'s cap is half the rate it read, however fast its progress passes over the ranges it skips; its cap is dropped by the same measure', async () => {
  const t = await throttledRunner('incremental', { latencyGuard: { thresholdMs: 20, minBytesPerSecond: 256 * 1024 } });
  try {
    assert.equal(t.report(0, 0, 5, 0), undefined);
    // 4 MiB read in a second while progress passed 400 MiB, mostly unchanged ranges: 2 MiB/s, not 200.
    assert.equal(t.report(1000, 4 * MiB, 50, 400 * MiB), 2);
    assert.equal(t.runner.runningWorkers()[0]?.readCap, 2 * MiB);
    // It reads at its cap, progress still leaping: halved per slow report.
    assert.equal(t.report(2000, 6 * MiB, 50, 700 * MiB), 1);
    assert.equal(t.report(3000, 7 * MiB, 50, 800 * MiB), 0.5);
    // Under the threshold, reading at its cap: raised.
    assert.equal(t.report(4000, 7.5 * MiB, 5, 850 * MiB), 0.75);
    // It read 0.25 MiB (the storage's pace) while progress passed 100 MiB: 1.125 MiB/s would be
    // over twice what it read, so the cap does not bind and is dropped.
    assert.equal(t.report(5000, 7.75 * MiB, 5, 950 * MiB), undefined);
    assert.deepEqual(t.worker.sent.map((r) => r.sourceRead === undefined ? undefined : r.sourceRead / MiB), [2, 1, 0.5, 0.75, undefined]);
  } finally {
    await t.close();
  }
});

test('with the guard off, or its throttle off, slow reads leave a running backup\'s rates alone', async () => {
  for (const [name, latencyGuard] of [['unguarded', undefined], ['no-throttle', { thresholdMs: 20, throttle: false }]] as const) {
    const t = await throttledRunner(name, { bandwidth: [readRule(8)], ...(latencyGuard === undefined ? {} : { latencyGuard }) });
    try {
      for (let ms = 0; ms <= 5000; ms += 1000) t.report(ms, ms * 8 * 1024, 500);
      assert.deepEqual(t.worker.sent, [], `${name}: no rate change`);
      assert.equal(t.runner.runningWorkers()[0]?.readCap, undefined);
    } finally {
      await t.close();
    }
  }
});

test('a latency guard given while a backup runs throttles it at once; taken away, the cap goes; a bad one changes nothing', async () => {
  const t = await throttledRunner('set-later', { bandwidth: [readRule(8)] });
  try {
    assert.equal(t.report(0, 0, 500), 8, 'no guard: the rule');
    t.runner.setPolicies({ latencyGuard: { thresholdMs: 20 } });
    assert.equal(t.report(1000, 4 * MiB, 500), 4, 'slow: half the rate read since the last report');
    assert.throws(() => t.runner.setPolicies({ bandwidth: [readRule(1)], latencyGuard: { thresholdMs: 20, minBytesPerSecond: 1 } }), (e) => isCofferError(e, 'E_USAGE'));
    assert.equal(t.worker.sent.at(-1)?.sourceRead, 4 * MiB, 'nothing changed: not the 1 MiB/s rule given beside the bad guard');
    assert.equal(t.report(2000, 8 * MiB, 500), 2, 'the bad setting left the guard as it was');
    t.runner.setPolicies({ latencyGuard: null });
    assert.equal(t.worker.sent.at(-1)?.sourceRead, 8 * MiB, 'no guard: back to the rule at once');
    assert.equal(t.report(3000, 10 * MiB, 500), 8);
    assert.equal(t.runner.runningWorkers()[0]?.readCap, undefined);
  } finally {
    await t.close();
  }
});

test('a bad latency guard setting is a clear error', async () => {
  const state = await openState(join(dir.path, 'bad.db'));
  try {
    assert.throws(() => new TaskRunner(state.db, { latencyGuard: { thresholdMs: 20, minBytesPerSecond: 10 } }), (e) => isCofferError(e, 'E_USAGE') && /minBytesPerSecond/.test((e as Error).message));
    assert.throws(() => new TaskRunner(state.db, { latencyGuard: { thresholdMs: Number.NaN } }), (e) => isCofferError(e, 'E_USAGE'));
  } finally {
    await state.close();
  }
});
