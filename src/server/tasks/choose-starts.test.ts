import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseStarts, type ActiveTask, type QueuedTask } from './choose-starts.js';

const now = new Date('2026-03-02T23:00:00Z');
const task = (id: string, more: Partial<QueuedTask> = {}): QueuedTask => ({ id, runId: 'r', vm: id, host: `hv-${id}`, datastore: null, repository: 'main', job: 'nightly', notBefore: null, ...more });
const base = { now, limits: {}, windowEnds: new Map<string, number>(), vmStates: new Map() };
const ids = (tasks: readonly QueuedTask[]) => tasks.map((t) => t.id);

test('a retry waits for its time; a closed window ends its run\'s tasks; a missed-window VM goes first', () => {
  const queued = [task('due', { notBefore: now.getTime() }), task('later', { notBefore: now.getTime() + 1 }), task('closed', { runId: 'old' }), task('missed', { vm: 'vm-missed' })];
  const result = chooseStarts(queued, [], { ...base, windowEnds: new Map([['old', now.getTime()], ['r', now.getTime() + 60_000]]), vmStates: new Map([['vm-missed', { missedWindow: true }]]) });
  assert.deepEqual(ids(result.start), ['missed', 'due']);
  assert.deepEqual(ids(result.windowClosed), ['closed']);
});

test('the latency guard holds a datastore while a task on it reads slowly or has not measured, and probes one at a time', () => {
  const queued = [task('a', { datastore: 'san' }), task('b', { datastore: 'san' }), task('c', { datastore: 'nfs' })];
  const guard = { latencyGuard: { thresholdMs: 20 } };
  const on = (latencyMs: number | undefined, reading = true): ActiveTask => ({ id: 'x', host: 'hv-x', datastore: 'san', repository: 'main', job: 'nightly', reading, latencyMs });
  assert.deepEqual(ids(chooseStarts(queued, [], { ...base, ...guard }).start), ['a', 'c'], 'one probe per datastore');
  assert.deepEqual(ids(chooseStarts(queued, [on(undefined)], { ...base, ...guard }).start), ['c'], 'not measured yet');
  assert.deepEqual(ids(chooseStarts(queued, [on(35)], { ...base, ...guard }).start), ['c'], 'too slow');
  assert.deepEqual(ids(chooseStarts(queued, [on(35, false)], { ...base, ...guard }).start), ['a', 'c'], 'done reading: it no longer speaks for the datastore');
  assert.deepEqual(ids(chooseStarts(queued, [on(5)], { ...base, ...guard }).start), ['a', 'c']);
  assert.deepEqual(ids(chooseStarts(queued, [on(35)], base).start), ['a', 'b', 'c'], 'no guard: only the limits count');
});

test('with staleMs, a report (or a start, before any) older than that no longer holds its datastore: one probe, and the probe holds again', () => {
  const queued = [task('a', { datastore: 'san' }), task('b', { datastore: 'san' }), task('c', { datastore: 'nfs' })];
  const guard = { latencyGuard: { thresholdMs: 20, staleMs: 30_000 } };
  const at = (ago: number, latencyMs: number | undefined): ActiveTask => ({ id: 'x', host: 'hv-x', datastore: 'san', repository: 'main', job: 'nightly', reading: true, latencyMs, reportedAt: now.getTime() - ago });
  assert.deepEqual(ids(chooseStarts(queued, [at(30_000, 35)], { ...base, ...guard }).start), ['c'], 'a slow report a lease old still holds');
  assert.deepEqual(ids(chooseStarts(queued, [at(30_001, 35)], { ...base, ...guard }).start), ['a', 'c'], 'older: one probe');
  assert.deepEqual(ids(chooseStarts(queued, [at(30_001, undefined)], { ...base, ...guard }).start), ['a', 'c'], 'started that long ago and never reported: one probe');
  assert.deepEqual(ids(chooseStarts(queued, [at(30_001, 35), at(0, undefined)], { ...base, ...guard }).start), ['c'], 'the probe, not measured yet, holds again');
  assert.deepEqual(ids(chooseStarts(queued, [at(60_000, 35)], { ...base, latencyGuard: { thresholdMs: 20 } }).start), ['c'], 'without staleMs a report never goes stale');
});
