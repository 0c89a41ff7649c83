import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSchedule } from './calendar/index.js';
import { decideRun, MAX_COUNTED_FIRINGS, scheduleEdited, type RunDecision, type ScheduleState } from './schedule-state.js';

const at = (iso: string) => new Date(iso);
const nightly = parseSchedule('22:00', { timeZone: 'UTC' });
const quarterly = parseSchedule('*:0/15', { timeZone: 'UTC' });
const BOOT = at('2026-03-01T00:00:00Z');

function summary(decision: RunDecision) {
  const { state, ...rest } = decision;
  return JSON.parse(JSON.stringify({ ...rest, settledUntil: state.settledUntil }));
}

test('a new job waits for its first firing, starts when it is due, then waits for the next', () => {
  const created = scheduleEdited(at('2026-03-02T10:00:00Z'));
  const check = { upSince: BOOT, running: false, repeatMissed: false };
  assert.deepEqual(summary(decideRun(nightly, created, { ...check, now: at('2026-03-02T10:00:00Z') })), {
    action: 'wait', until: '2026-03-02T22:00:00.000Z', settledUntil: '2026-03-02T10:00:00.000Z',
  });
  const due = decideRun(nightly, created, { ...check, now: at('2026-03-02T22:00:00.400Z') });
  assert.deepEqual(summary(due), { action: 'start', firing: '2026-03-02T22:00:00.000Z', missed: false, settledUntil: '2026-03-02T22:00:00.000Z' });
  assert.deepEqual(summary(decideRun(nightly, due.state, { ...check, now: at('2026-03-02T22:00:01Z') })), {
    action: 'wait', until: '2026-03-03T22:00:00.000Z', settledUntil: '2026-03-02T22:00:00.000Z',
  });
});

test('a firing while the job still runs is skipped and reported, never overlapped', () => {
  const state = { settledUntil: at('2026-03-02T10:00:00Z') }; // the 10:00 run started and still runs
  const check = { upSince: BOOT, repeatMissed: true };
  const skipped = decideRun(quarterly, state, { ...check, running: true, now: at('2026-03-02T10:15:00Z') });
  assert.deepEqual(summary(skipped), { action: 'skip-overlap', firing: '2026-03-02T10:15:00.000Z', count: 1, settledUntil: '2026-03-02T10:15:00.000Z' });
  // Still running at 10:30, the tick 5 minutes late: skipped again; the skipped firing never runs later.
  const again = decideRun(quarterly, skipped.state, { ...check, running: true, now: at('2026-03-02T10:35:00Z') });
  assert.equal(again.action, 'skip-overlap');
  assert.deepEqual(summary(decideRun(quarterly, again.state, { ...check, running: false, now: at('2026-03-02T10:40:00Z') })), {
    action: 'wait', until: '2026-03-02T10:45:00.000Z', settledUntil: '2026-03-02T10:30:00.000Z',
  });
});

test('firings missed while the server was down run once at start with repeat-missed', () => {
  const lastRun = { settledUntil: at('2026-03-02T22:00:00Z') }; // ran Monday night; down from Tuesday to Thursday 09:00
  const upSince = at('2026-03-05T09:00:00Z');
  const first = decideRun(nightly, lastRun, { now: upSince, upSince, running: false, repeatMissed: true });
  assert.deepEqual(summary(first), { action: 'start', firing: '2026-03-04T22:00:00.000Z', missed: true, settledUntil: '2026-03-04T22:00:00.000Z' });
  // Once: the next tick (the catch-up run is going or done) waits for Thursday night.
  for (const running of [true, false]) {
    assert.deepEqual(summary(decideRun(nightly, first.state, { now: at('2026-03-05T09:00:05Z'), upSince, running, repeatMissed: true })), {
      action: 'wait', until: '2026-03-05T22:00:00.000Z', settledUntil: '2026-03-04T22:00:00.000Z',
    });
  }
});

test('without repeat-missed the missed firings are dropped and reported; the next one runs on time', () => {
  const lastRun = { settledUntil: at('2026-03-02T22:00:00Z') };
  const upSince = at('2026-03-05T09:00:00Z');
  const dropped = decideRun(nightly, lastRun, { now: upSince, upSince, running: false, repeatMissed: false });
  assert.deepEqual(summary(dropped), { action: 'drop-missed', firing: '2026-03-04T22:00:00.000Z', count: 2, settledUntil: '2026-03-04T22:00:00.000Z' });
  const onTime = decideRun(nightly, dropped.state, { now: at('2026-03-05T22:00:02Z'), upSince, running: false, repeatMissed: false });
  assert.deepEqual(summary(onTime), { action: 'start', firing: '2026-03-05T22:00:00.000Z', missed: false, settledUntil: '2026-03-05T22:00:00.000Z' });
});

test('editing a schedule never fires a catch-up run', () => {
  const lastRun: ScheduleState = { settledUntil: at('2026-03-02T22:00:00Z') };
  const editAt = at('2026-03-03T10:20:00Z');
  const hourly = parseSchedule('hourly', { timeZone: 'UTC' });
  const check = { upSince: BOOT, running: false, repeatMissed: true, now: at('2026-03-03T10:20:01Z') };
  // Without the edit rule the new hourly schedule would owe runs since Monday 22:00:
  assert.equal(decideRun(hourly, lastRun, check).action, 'start');
  // With it, the first run is the first firing after the edit.
  const edited = scheduleEdited(editAt, lastRun);
  assert.deepEqual(summary(decideRun(hourly, edited, check)), { action: 'wait', until: '2026-03-03T11:00:00.000Z', settledUntil: '2026-03-03T10:20:00.000Z' });
  // An edit never moves the settled point back.
  assert.equal(scheduleEdited(at('2026-03-01T00:00:00Z'), lastRun).settledUntil.toISOString(), '2026-03-02T22:00:00.000Z');
});

test('a long downtime of a dense schedule is settled quickly, at the latest firing', () => {
  const everySecond = parseSchedule('*:*:*', { timeZone: 'UTC' });
  const upSince = at('2026-04-01T12:34:56.700Z');
  const started = performance.now();
  const decision = decideRun(everySecond, { settledUntil: at('2026-03-01T00:00:00Z') }, { now: upSince, upSince, running: false, repeatMissed: false });
  assert.deepEqual(summary(decision), { action: 'drop-missed', firing: '2026-04-01T12:34:56.000Z', count: MAX_COUNTED_FIRINGS, settledUntil: '2026-04-01T12:34:56.000Z' });
  assert.ok(performance.now() - started < 3000);
});

test('driven by an injected clock for a day, a job longer than its interval never overlaps itself', () => {
  // Every 30 minutes; each run takes 40 minutes, so every other firing comes while it runs.
  const schedule = parseSchedule('*:0/30', { timeZone: 'Europe/Berlin' });
  const RUN_MS = 40 * 60_000;
  let now = at('2026-03-02T00:00:00Z').getTime();
  const end = now + 86_400_000;
  let state = scheduleEdited(new Date(now));
  let runningUntil = -Infinity;
  const starts: number[] = [];
  let skipped = 0;
  while (now < end) {
    const decision = decideRun(schedule, state, { now: new Date(now), upSince: BOOT, running: now < runningUntil, repeatMissed: true });
    state = decision.state;
    if (decision.action === 'start') {
      assert.ok(now >= runningUntil, 'never two runs at once');
      starts.push(now);
      runningUntil = now + RUN_MS;
    } else if (decision.action === 'skip-overlap') skipped += decision.count;
    // The server sleeps until the next firing or the end of the run, whichever comes first.
    const wake = decision.action === 'wait' && decision.until !== undefined ? decision.until.getTime() : now + 1000;
    now = Math.max(now + 1, Math.min(wake, runningUntil > now ? runningUntil : Infinity));
  }
  // 47 firings after the creation at 00:00: runs at each :30 (00:30 … 23:30 UTC); each :00
  // firing (01:00 … 23:00) comes 30 minutes into a run and is skipped.
  assert.equal(starts.length, 24);
  assert.equal(new Date(starts[0] as number).toISOString(), '2026-03-02T00:30:00.000Z');
  assert.equal(skipped, 23);
  assert.ok(starts.every((start, i) => i === 0 || start - (starts[i - 1] as number) === 3_600_000));
});
