/**
 * Staggering, proven on the planner driven by an injected clock (the server's loop in
 * miniature): 3 hosts × 4 VMs, one backup per host at a time, two at most in all, tasks of
 * varying durations. Each task's start and end are recorded; a sweep over them checks the
 * limits at every instant. Then a backup window that closes mid-run.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planStarts, type ConcurrencyLimits, type PendingTask, type RunningTask } from './index.js';

const MINUTE = 60_000;

/** A clock that only moves when told to, with timers that fire in order as it moves. */
class SimulatedClock {
  private timers: { at: number; seq: number; fire: () => void }[] = [];
  private seq = 0;
  constructor(public now: number) {}
  after(ms: number, fire: () => void): void {
    this.timers.push({ at: this.now + ms, seq: this.seq++, fire });
  }
  /** Fires timers in time order until none is left; returns how many fired. */
  run(): number {
    let fired = 0;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const timer = this.timers.shift();
      if (timer === undefined) return fired;
      this.now = timer.at;
      timer.fire();
      fired++;
    }
  }
}

interface Vm extends PendingTask {
  readonly durationMs: number;
}

interface Record {
  readonly id: string;
  readonly host: string;
  readonly start: number;
  end?: number;
}

/**
 * One night: plans when the night begins and whenever a task ends (as the server will), runs
 * each started task for its duration on the clock. Returns the records and the VMs whose
 * job window closed before their turn.
 */
function runNight(clock: SimulatedClock, vms: Vm[], limits: ConcurrencyLimits, windowEnd?: number) {
  const pending = [...vms];
  const running: RunningTask[] = [];
  const records: Record[] = [];
  const closed: Vm[] = [];
  const plan = () => {
    const decision = planStarts(pending, { running, limits, now: new Date(clock.now), ...(windowEnd === undefined ? {} : { windowEnds: { nightly: new Date(windowEnd) } }) });
    for (const vm of decision.windowClosed) {
      closed.push(vm);
      pending.splice(pending.indexOf(vm), 1);
    }
    for (const vm of decision.start) {
      pending.splice(pending.indexOf(vm), 1);
      running.push(vm);
      const record: Record = { id: vm.id, host: vm.host, start: clock.now };
      records.push(record);
      clock.after(vm.durationMs, () => {
        record.end = clock.now;
        running.splice(running.indexOf(vm), 1);
        plan();
      });
    }
  };
  plan();
  clock.run();
  return { records, closed, pending };
}

/** Sweeps over every start and end: the most tasks running at once, in all and on one host. */
function peaks(records: Record[]) {
  const events = records.flatMap((r) => [
    { at: r.start, delta: 1, host: r.host },
    { at: r.end as number, delta: -1, host: r.host },
  ]);
  events.sort((a, b) => a.at - b.at || a.delta - b.delta); // an end and a start at one instant: the end first
  let total = 0;
  let maxTotal = 0;
  let maxPerHost = 0;
  const perHost = new Map<string, number>();
  for (const event of events) {
    total += event.delta;
    const onHost = (perHost.get(event.host) ?? 0) + event.delta;
    perHost.set(event.host, onHost);
    maxTotal = Math.max(maxTotal, total);
    maxPerHost = Math.max(maxPerHost, onHost);
  }
  return { maxTotal, maxPerHost };
}

const NIGHT = Date.UTC(2026, 2, 2, 22);
const LIMITS: ConcurrencyLimits = { global: 2 }; // per host: the default, 1

function inventory(lastSuccess: (id: string) => Date | undefined, missed: Set<string> = new Set()): Vm[] {
  const durations = [17, 42, 8, 30, 25, 11, 50, 14, 21, 36, 9, 28]; // minutes, varying
  return ['h1', 'h2', 'h3'].flatMap((host, h) =>
    [0, 1, 2, 3].map((v) => {
      const id = `${host}-vm${v}`;
      const last = lastSuccess(id);
      return {
        id,
        host,
        repository: 'repo',
        job: 'nightly',
        durationMs: (durations[h * 4 + v] as number) * MINUTE,
        ...(last === undefined ? {} : { lastSuccess: last }),
        ...(missed.has(id) ? { missedLastWindow: true } : {}),
      };
    }),
  );
}

test('3 hosts × 4 VMs, per host 1, global 2: never two on one host, never more than 2, all 12 complete', () => {
  const clock = new SimulatedClock(NIGHT);
  const night = runNight(clock, inventory(() => new Date(NIGHT - 86_400_000)), LIMITS);
  assert.equal(night.records.length, 12);
  assert.ok(night.records.every((r) => r.end !== undefined && r.end > r.start), 'all 12 complete');
  const { maxTotal, maxPerHost } = peaks(night.records);
  assert.equal(maxPerHost, 1);
  assert.equal(maxTotal, 2);
  // Staggered, not serialised: total busy time 291 min over 2 lanes; the night ends well before 291 min.
  const end = Math.max(...night.records.map((r) => r.end as number));
  assert.ok(end - NIGHT < 200 * MINUTE && end - NIGHT >= 146 * MINUTE, `night took ${(end - NIGHT) / MINUTE} min`);
});

test('a window that closes mid-run: nothing starts after it, and the skipped VMs go first next night', () => {
  const clock = new SimulatedClock(NIGHT);
  const windowEnd = NIGHT + 60 * MINUTE;
  const lastSuccess = new Map<string, Date>();
  const first = runNight(clock, inventory(() => new Date(NIGHT - 86_400_000)), LIMITS, windowEnd);
  assert.ok(first.records.every((r) => r.start < windowEnd), 'no start at or after the window closes');
  assert.ok(first.records.some((r) => (r.end as number) > windowEnd), 'a task started in time runs to its end');
  assert.ok(first.closed.length >= 3 && first.records.length >= 3, `${first.records.length} ran, ${first.closed.length} skipped`);
  assert.equal(first.records.length + first.closed.length, 12);
  assert.deepEqual(first.pending, []);
  for (const r of first.records) lastSuccess.set(r.id, new Date(r.end as number));

  // Next night: the skipped ones are marked, and two new VMs (never backed up, so otherwise
  // the oldest of all) join on h1 and h2.
  const skipped = new Set(first.closed.map((vm) => vm.id));
  const second = NIGHT + 86_400_000;
  const clock2 = new SimulatedClock(second);
  const vms = [
    ...inventory((id) => lastSuccess.get(id) ?? new Date(NIGHT - 86_400_000), skipped),
    { id: 'h1-new', host: 'h1', repository: 'repo', job: 'nightly', durationMs: 5 * MINUTE },
    { id: 'h2-new', host: 'h2', repository: 'repo', job: 'nightly', durationMs: 5 * MINUTE },
  ];
  const night2 = runNight(clock2, vms, LIMITS);
  assert.equal(night2.records.length, 14);
  const order = [...night2.records].sort((a, b) => a.start - b.start);
  // The first starts are skipped VMs, and on every host each skipped VM starts before any other.
  const firstBatch = order.filter((r) => r.start === second);
  assert.ok(firstBatch.length === 2 && firstBatch.every((r) => skipped.has(r.id)), `first: ${firstBatch.map((r) => r.id).join(', ')}`);
  for (const host of ['h1', 'h2', 'h3']) {
    const onHost = order.filter((r) => r.host === host).map((r) => skipped.has(r.id));
    assert.deepEqual(onHost, [...onHost].sort((a, b) => Number(b) - Number(a)), `${host}: skipped first`);
  }
  const { maxTotal, maxPerHost } = peaks(night2.records);
  assert.deepEqual([maxTotal, maxPerHost], [2, 1]);
});
