import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { BandwidthRules } from './bandwidth-rules.js';
import { retryAt, runEnd, taskEnd } from './outcomes.js';

const MB = 1_000_000;

test('a time-of-day rule applies in its hours and zone, the constant one otherwise; the rate is shared by the running tasks', () => {
  const rules = new BandwidthRules([
    { direction: 'source-read', bytesPerSecond: 20 * MB, at: 'mon..fri 8-18', timeZone: 'Europe/Berlin' },
    { direction: 'source-read', bytesPerSecond: 100 * MB },
    { direction: 'repository-write', bytesPerSecond: 50 * MB, at: 'sat,sun *:*' },
  ]);
  const table: [string, number | undefined, number | undefined][] = [
    ['2026-03-02T07:00:00Z', 20 * MB, undefined], // Monday 08:00 in Berlin
    ['2026-03-02T06:59:59Z', 100 * MB, undefined], // 07:59:59
    ['2026-03-02T16:59:00Z', 20 * MB, undefined], // 17:59
    ['2026-03-02T17:00:00Z', 100 * MB, undefined], // 18:00: over
    ['2026-03-07T10:00:00Z', 100 * MB, 50 * MB], // Saturday
  ];
  for (const [iso, read, write] of table) {
    assert.equal(rules.rateAt('source-read', new Date(iso)), read, `read at ${iso}`);
    assert.equal(rules.rateAt('repository-write', new Date(iso)), write, `write at ${iso}`);
  }
  assert.deepEqual(rules.shareAt(new Date('2026-03-02T07:00:00Z'), 4), { sourceRead: 5 * MB });
  assert.deepEqual(new BandwidthRules([]).shareAt(new Date(), 3), {});
});

test('bad rules are refused with the reason', () => {
  assert.throws(() => new BandwidthRules([{ direction: 'source-read', bytesPerSecond: 10 }]), (e) => isCofferError(e, 'E_USAGE') && /1024/.test(e.message));
  assert.throws(() => new BandwidthRules([{ direction: 'source-read', bytesPerSecond: MB, at: 'mon 18-8' }]), (e) => isCofferError(e, 'E_USAGE') && /forward/.test(e.message));
  assert.throws(() => new BandwidthRules([{ direction: 'source-read', bytesPerSecond: MB, at: 'someday' }]), (e) => isCofferError(e, 'E_USAGE'));
});

test('retries back off, then stop', () => {
  const policy = { retries: 2, delayMs: 1000, backoff: 3 };
  assert.equal(retryAt(policy, 1, 0), 1000);
  assert.equal(retryAt(policy, 2, 0), 3000);
  assert.equal(retryAt(policy, 3, 0), undefined);
  assert.equal(retryAt({ retries: 0 }, 1, 0), undefined);
});

test('a worker\'s outcome gives the task\'s status; the latest attempts give the run\'s', () => {
  assert.deepEqual(taskEnd({ kind: 'crashed', exitCode: null, signal: 'SIGKILL', stderr: '' }, false).error?.code, 'E_WORKER_FAILED');
  assert.equal(taskEnd({ kind: 'error', code: 'E_INTERRUPTED', message: 'x' }, true).status, 'cancelled');
  assert.equal(taskEnd({ kind: 'error', code: 'E_SOURCE_UNREADABLE', message: 'x' }, false).status, 'failed');
  assert.deepEqual(runEnd([{ status: 'succeeded', errorCode: null }, { status: 'cancelled', errorCode: 'E_WINDOW_CLOSED' }]), { status: 'warning', detail: '1 succeeded, 1 stopped by the backup window' });
  assert.equal(runEnd([{ status: 'succeeded', errorCode: null }, { status: 'interrupted', errorCode: 'E_INTERRUPTED' }]).status, 'failed');
  assert.equal(runEnd([]).status, 'succeeded');
});

test('scoped rules: a task falls under the first rule that applies now and covers its host and repository; the rate is shared under that rule only', () => {
  const rules = new BandwidthRules([
    { direction: 'source-read', bytesPerSecond: 10 * MB, hosts: ['h1'] },
    { direction: 'source-read', bytesPerSecond: 40 * MB, at: 'mon..fri 8-18', timeZone: 'Europe/Berlin' },
    { direction: 'repository-write', bytesPerSecond: 6 * MB, repositories: ['offsite'] },
    { direction: 'repository-write', bytesPerSecond: 30 * MB, hosts: ['h2'], repositories: ['main'] },
  ]);
  assert.equal(rules.scoped, true);
  assert.equal(new BandwidthRules([{ direction: 'source-read', bytesPerSecond: MB }]).scoped, false);
  const tasks = [
    { host: 'h1', repository: 'main', reading: true },
    { host: 'h1', repository: 'offsite', reading: true },
    { host: 'h2', repository: 'main', reading: true },
    { host: 'h2', repository: 'main', reading: false },
    { host: 'h3', repository: 'offsite', reading: true },
  ];
  const monday9 = new Date('2026-03-02T08:00:00Z'); // 09:00 in Berlin
  assert.deepEqual(rules.sharesAt(monday9, tasks), [
    { sourceRead: 5 * MB }, // h1's rule, two h1 tasks reading
    { sourceRead: 5 * MB, repositoryWrite: 3 * MB }, // offsite's rule, two offsite tasks
    { sourceRead: 20 * MB, repositoryWrite: 15 * MB }, // the office-hours rule, shared by the two other readers
    { sourceRead: 20 * MB, repositoryWrite: 15 * MB }, // done reading: not counted among the readers (its share is moot), still writes under h2+main
    { sourceRead: 20 * MB, repositoryWrite: 3 * MB },
  ]);
  const sunday = new Date('2026-03-08T12:00:00Z');
  assert.deepEqual(rules.sharesAt(sunday, tasks).map((r) => r.sourceRead), [5 * MB, 5 * MB, undefined, undefined, undefined], 'off hours only h1 is read-limited');
});
