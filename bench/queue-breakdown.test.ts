import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TaskTiming } from '../src/server/cluster/night-run.js';
import { emptyTakes, parseTakeTimings, quantiles, splitDelays } from './queue-breakdown.js';

const task = (vm: string, worker: string, createdAt: number, startedAt: number, endedAt: number): TaskTiming => ({ vm, host: vm, worker, createdAt, startedAt, endedAt, status: 'succeeded' });

test('quantiles: nearest rank, median and 90th percentile', () => {
  assert.deepEqual(quantiles([5, 1, 4, 2, 3]), { median: 3, p90: 5 });
  assert.deepEqual(quantiles(Array.from({ length: 10 }, (_, i) => i + 1)), { median: 5, p90: 9 });
  assert.deepEqual(quantiles([]), { median: 0, p90: 0 });
});

test('a delay is split at the hand-out that set its start: to the call, lock wait, under the lock; first round vs freed slot', () => {
  const stdout = [
    'worker w1: 4 task(s) at once',
    'queue: {"at":1010,"free":4,"taken":1,"readMs":1,"lockWaitMs":3,"lockedMs":4,"totalMs":7}',
    'queue: {"at":2000,"free":0,"taken":0,"readMs":1,"lockWaitMs":1,"lockedMs":0,"totalMs":1}',
    'queue: {"at":5008,"free":1,"taken":1,"readMs":1,"lockWaitMs":2,"lockedMs":5,"totalMs":7}',
  ].join('\n');
  const takes = new Map([['w1', parseTakeTimings(stdout)]]);
  const tasks = [task('a', 'w1', 1000, 1015, 5000), task('b', 'w1', 1000, 5013, 9000)];
  // a: could run at its creation (1000); b: when a ended (5000).
  const parts = splitDelays(tasks, [15, 13], takes);
  assert.deepEqual(parts, [
    { cause: 'first', delayMs: 15, toCallMs: 10, lockWaitMs: 3, underLockMs: 2 },
    { cause: 'freed', delayMs: 13, toCallMs: 8, lockWaitMs: 2, underLockMs: 3 },
  ]);
  assert.equal(emptyTakes(takes).count, 1);
});
