import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cappedRates, ReadThrottle } from './read-throttle.js';

const MiB = 1024 * 1024;
const options = { thresholdMs: 20, minBytesPerSecond: 1 * MiB };

test('slow reports halve the rate achieved, then the cap, down to the floor and no lower', () => {
  const throttle = new ReadThrottle(options);
  assert.equal(throttle.report(0, 0, 50, undefined), false, 'the first report has no rate to halve');
  assert.equal(throttle.cap, undefined);
  // 16 MiB in 1 s: the cap is half of it.
  assert.equal(throttle.report(1000, 16 * MiB, 50, undefined), true);
  assert.equal(throttle.cap, 8 * MiB);
  // It read at its cap; still slow: half again, and so on to the floor.
  const caps: number[] = [];
  let done = 16 * MiB;
  for (let at = 2000; at <= 7000; at += 1000) {
    done += throttle.cap as number;
    throttle.report(at, done, 50, undefined);
    caps.push((throttle.cap as number) / MiB);
  }
  assert.deepEqual(caps, [4, 2, 1, 1, 1, 1]);
  // Slower than its cap (the storage is the limit): half of what it achieved, held at the floor.
  throttle.report(8000, done + 0.5 * MiB, 50, undefined);
  assert.equal(throttle.cap, 1 * MiB);
});

test('a cap lower than what it achieved is halved, not replaced by half the higher rate; the share is the basis before any rate', () => {
  const throttle = new ReadThrottle(options);
  throttle.report(0, 0, 5, 8 * MiB);
  throttle.report(1000, 8 * MiB, 50, 8 * MiB);
  assert.equal(throttle.cap, 4 * MiB);
  // A burst above the cap (a token bucket's first second): the cap still halves.
  throttle.report(2000, 16 * MiB, 50, 8 * MiB);
  assert.equal(throttle.cap, 2 * MiB);
  const fresh = new ReadThrottle(options);
  fresh.report(0, 0, 50, 6 * MiB);
  assert.equal(fresh.cap, 3 * MiB, 'without a rate yet, half the share');
});

test('reports under the threshold raise the cap ×1.5 until it reaches the share, then drop it', () => {
  const throttle = new ReadThrottle(options);
  throttle.report(0, 0, 5, 10 * MiB);
  throttle.report(1000, 4 * MiB, 50, 10 * MiB);
  assert.equal(throttle.cap, 2 * MiB);
  const caps: (number | undefined)[] = [];
  let done = 4 * MiB;
  for (let at = 2000; at <= 6000; at += 1000) {
    done += throttle.cap ?? 10 * MiB;
    throttle.report(at, done, 5, 10 * MiB);
    caps.push(throttle.cap === undefined ? undefined : throttle.cap / MiB);
  }
  assert.deepEqual(caps, [3, 4.5, 6.75, undefined, undefined], 'dropped once ×1.5 would reach the 10 MiB/s share');
  assert.equal(throttle.report(7000, done + 10 * MiB, undefined, 10 * MiB), false, 'a report without reads changes nothing');
});

test('without a share, a cap the backup no longer uses is dropped', () => {
  const throttle = new ReadThrottle(options);
  throttle.report(0, 0, 5, undefined);
  throttle.report(1000, 8 * MiB, 50, undefined);
  assert.equal(throttle.cap, 4 * MiB);
  throttle.report(2000, 12 * MiB, 5, undefined);
  assert.equal(throttle.cap, 6 * MiB, 'it read at its cap: raised');
  // It read 3 MiB (the storage's pace): 9 MiB/s would be three times that, so the cap does not bind.
  assert.equal(throttle.report(3000, 15 * MiB, 5, undefined), true);
  assert.equal(throttle.cap, undefined);
});

test('a report without the bytes read measures no rate: the share or the cap in force is halved', () => {
  const throttle = new ReadThrottle(options);
  throttle.report(0, 0, 5, undefined);
  assert.equal(throttle.report(1000, undefined, 50, undefined), false, 'no rate, no share: nothing to halve');
  assert.equal(throttle.report(2000, 16 * MiB, 50, undefined), false, 'no rate since the report without one');
  assert.equal(throttle.report(3000, 20 * MiB, 50, undefined), true);
  assert.equal(throttle.cap, 2 * MiB, 'half the 4 MiB/s read since the previous report');
  assert.equal(throttle.report(4000, undefined, 50, 8 * MiB), true);
  assert.equal(throttle.cap, 1 * MiB, 'half the cap in force');
});

test('the worker gets the smaller of its share and the cap; other rates are kept', () => {
  assert.deepEqual(cappedRates({ sourceRead: 4 * MiB, repositoryWrite: 9 }, 2 * MiB), { sourceRead: 2 * MiB, repositoryWrite: 9 });
  assert.deepEqual(cappedRates({ sourceRead: 1 * MiB, repositoryWrite: 9 }, 2 * MiB), { sourceRead: 1 * MiB, repositoryWrite: 9 });
  assert.deepEqual(cappedRates({ repositoryWrite: 9 }, 2 * MiB), { sourceRead: 2 * MiB, repositoryWrite: 9 });
  assert.deepEqual(cappedRates({ sourceRead: 4 * MiB }, undefined), { sourceRead: 4 * MiB });
});
