import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { forecastRun, type ConcurrencyLimits, type PendingTask } from './index.js';

const START = new Date('2026-03-02T22:00:00Z');
const H = 3_600_000;
const at = (hours: number) => new Date(START.getTime() + hours * H).toISOString();
const day = (n: number) => new Date(Date.UTC(2026, 1, n));

test('a hand-computed night: who fits, who overruns, who will not start', () => {
  // One per host; window 3 h. Order: c1 (never backed up), then a1, a2, a3, b1, b2, b3 by age.
  const pending: PendingTask[] = [
    { id: 'a1', host: 'a', repository: 'r', job: 'n', lastSuccess: day(1), expectedDurationMs: 1 * H },
    { id: 'a2', host: 'a', repository: 'r', job: 'n', lastSuccess: day(2), expectedDurationMs: 1.5 * H },
    { id: 'a3', host: 'a', repository: 'r', job: 'n', lastSuccess: day(3), expectedDurationMs: 1 * H },
    { id: 'b1', host: 'b', repository: 'r', job: 'n', lastSuccess: day(4), expectedDurationMs: 2.5 * H },
    { id: 'b2', host: 'b', repository: 'r', job: 'n', lastSuccess: day(5), expectedDurationMs: 1 * H },
    { id: 'b3', host: 'b', repository: 'r', job: 'n', lastSuccess: day(6), expectedDurationMs: 0.25 * H },
    { id: 'c1', host: 'c', repository: 'r', job: 'n' }, // no history: the default 2 h
  ];
  const forecast = forecastRun(pending, {
    limits: {},
    start: START,
    windowEnds: { n: new Date(START.getTime() + 3 * H) },
    running: [{ id: 'c0', host: 'c', repository: 'r', job: 'other', expectedEnd: new Date(START.getTime() + 0.5 * H) }],
    defaultDurationMs: 2 * H,
  });
  // t=0: a1, b1 (c busy with c0). t=0.5: c1. t=1: a2. t=2.5: a3 and b2, past 3 h.
  // t=3.5: b3 would start, but the window closed at 3 h.
  assert.deepEqual(
    forecast.entries.map((e) => [e.task.id, e.outcome, e.start?.toISOString(), e.end?.toISOString()]),
    [
      ['a1', 'fits', at(0), at(1)],
      ['b1', 'fits', at(0), at(2.5)],
      ['c1', 'fits', at(0.5), at(2.5)],
      ['a2', 'fits', at(1), at(2.5)],
      ['a3', 'overruns', at(2.5), at(3.5)],
      ['b2', 'overruns', at(2.5), at(3.5)],
      ['b3', 'will-not-start', undefined, undefined],
    ],
  );
  assert.deepEqual(forecast.willNotStart.map((t) => t.id), ['b3']);
  assert.deepEqual(forecast.overruns.map((t) => t.id), ['a3', 'b2']);
  assert.equal(forecast.end?.toISOString(), at(3.5));
});

test('a limit of 0 means the task will never start, without looping', () => {
  const forecast = forecastRun([{ id: 'x', host: 'held', repository: 'r', job: 'n' }], { limits: { host: { overrides: { held: 0 } } }, start: START, defaultDurationMs: H });
  assert.deepEqual(forecast.willNotStart.map((t) => t.id), ['x']);
  assert.equal(forecast.end, undefined);
});

test('a duration that is not a finite number >= 0 is refused', () => {
  for (const expectedDurationMs of [-1, Number.NaN, Infinity]) {
    assert.throws(
      () => forecastRun([{ id: 'x', host: 'h', repository: 'r', job: 'n', expectedDurationMs }], { limits: {}, start: START, defaultDurationMs: H }),
      (error: unknown) => isCofferError(error, 'E_USAGE') && /expected duration of task x/.test(error.message),
    );
  }
});

test('600 VMs on 160 hosts in a 6-hour window: the simulated night keeps every limit at every instant', () => {
  let seed = 600;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const pending: PendingTask[] = Array.from({ length: 600 }, (_, i) => ({
    id: `vm${i}`,
    host: `host${Math.floor(next() * 160)}`,
    datastore: `ds${i % 10}`,
    repository: `repo${i % 2}`,
    job: `job${i % 4}`,
    lastSuccess: day(1 + Math.floor(next() * 27)),
    expectedDurationMs: Math.round((5 + next() * 85) * 60_000),
  }));
  const limits: ConcurrencyLimits = { global: 40, datastore: { default: 6 }, repository: { overrides: { repo1: 15 } } };
  const windowEnd = new Date(START.getTime() + 6 * H);
  const started = performance.now();
  const forecast = forecastRun(pending, { limits, start: START, windowEnds: { job0: windowEnd, job1: windowEnd, job2: windowEnd, job3: windowEnd }, defaultDurationMs: H });
  const elapsed = performance.now() - started;

  assert.equal(forecast.entries.length, 600);
  const runs = forecast.entries.filter((e) => e.start !== undefined) as { task: PendingTask; start: Date; end: Date }[];
  assert.ok(runs.every((r) => r.start < windowEnd), 'nothing starts after the window closes');
  assert.ok(forecast.willNotStart.length > 0 && runs.length > 300, `${runs.length} start, ${forecast.willNotStart.length} do not`);
  // At each start instant, count the tasks running then (intervals are [start, end)).
  for (const instant of new Set(runs.map((r) => r.start.getTime()))) {
    const active = runs.filter((r) => r.start.getTime() <= instant && instant < r.end.getTime());
    assert.ok(active.length <= 40, `global at ${instant}`);
    const per = (key: (t: PendingTask) => string) => {
      const counts = new Map<string, number>();
      for (const r of active) counts.set(key(r.task), (counts.get(key(r.task)) ?? 0) + 1);
      return Math.max(...counts.values());
    };
    assert.ok(per((t) => t.host) <= 1, 'one per host');
    assert.ok(per((t) => t.datastore as string) <= 6, 'per datastore');
    assert.ok(per((t) => (t.repository === 'repo1' ? 'repo1' : `other-${t.id}`)) <= 15, 'repo1');
  }
  assert.ok(elapsed < 1000, `forecast in ${elapsed.toFixed(0)} ms`);
});
