/** The published policy round-trips, Infinity included (JSON has none), on an SQLite state database. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openStateDatabase } from '../state/index.js';
import { publishPolicy, readPolicy } from './cluster-policy.js';

test('limits with Infinity, bandwidth rules, the retry policy and the latency guard come back as published; a later publish replaces only what it names', async () => {
  const state = await openStateDatabase({ file: ':memory:' });
  try {
    assert.deepEqual(await readPolicy(state.db), { limits: {}, bandwidth: [], retry: {}, latencyGuard: null }, 'nothing published yet');
    const limits = { global: Infinity, host: { default: 1, overrides: { big: 3 } }, job: { overrides: { nightly: 2 } } };
    await publishPolicy(state.db, { limits, bandwidth: [{ direction: 'source-read', bytesPerSecond: 2048, at: 'mon..fri 8-18' }], retry: { retries: 2, delayMs: 1000 } });
    await publishPolicy(state.db, { retry: { retries: 0 } });
    const read = await readPolicy(state.db);
    assert.deepEqual(read.limits, limits);
    assert.equal(read.limits.global, Infinity);
    assert.deepEqual(read.bandwidth, [{ direction: 'source-read', bytesPerSecond: 2048, at: 'mon..fri 8-18' }]);
    assert.deepEqual(read.retry, { retries: 0 });
    assert.equal(read.latencyGuard, null);
    await publishPolicy(state.db, { latencyGuard: { thresholdMs: 40, minBytesPerSecond: 2 * 1024 * 1024 } });
    assert.deepEqual((await readPolicy(state.db)).latencyGuard, { thresholdMs: 40, minBytesPerSecond: 2 * 1024 * 1024 });
    await publishPolicy(state.db, { latencyGuard: null });
    assert.equal((await readPolicy(state.db)).latencyGuard, null, 'a guard taken away is published as none');
  } finally {
    await state.close();
  }
});
