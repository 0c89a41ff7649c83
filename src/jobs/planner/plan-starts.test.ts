import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { planStarts, type ConcurrencyLimits, type PendingTask, type RunningTask } from './index.js';

const NOW = new Date('2026-03-02T22:00:00Z');
const day = (n: number) => new Date(Date.UTC(2026, 1, n));

function task(id: string, placement: Partial<PendingTask> = {}): PendingTask {
  return { id, host: 'h1', repository: 'r1', job: 'nightly', ...placement };
}

function ids(plan: { start: PendingTask[]; waiting: { task: PendingTask; layer: string }[]; windowClosed: PendingTask[] }) {
  return { start: plan.start.map((t) => t.id), waiting: plan.waiting.map((w) => `${w.task.id}:${w.layer}`), windowClosed: plan.windowClosed.map((t) => t.id) };
}

test('order: missed the last window first, then the oldest last success (never = oldest), then as given', () => {
  const pending = [
    task('recent', { host: 'a', lastSuccess: day(27) }),
    task('old', { host: 'b', lastSuccess: day(20) }),
    task('never', { host: 'c' }),
    task('missed-recent', { host: 'd', lastSuccess: day(26), missedLastWindow: true }),
    task('tie-1', { host: 'e', lastSuccess: day(25) }),
    task('tie-2', { host: 'f', lastSuccess: day(25) }),
    task('missed-old', { host: 'g', lastSuccess: day(10), missedLastWindow: true }),
  ];
  const plan = planStarts(pending, { running: [], limits: {}, now: NOW });
  assert.deepEqual(ids(plan).start, ['missed-old', 'missed-recent', 'never', 'old', 'tie-1', 'tie-2', 'recent']);
});

test('every layer holds tasks back, and a held task does not block the ones after it', () => {
  const running: RunningTask[] = [{ id: 'r', host: 'h1', datastore: 'ds1', repository: 'repoA', job: 'j1' }];
  const pending = [
    task('same-host', { host: 'h1', datastore: 'ds2', repository: 'repoB', job: 'j2', lastSuccess: day(1) }),
    task('same-datastore', { host: 'h2', datastore: 'ds1', repository: 'repoB', job: 'j2', lastSuccess: day(2) }),
    task('same-repo', { host: 'h3', datastore: 'ds2', repository: 'repoA', job: 'j2', lastSuccess: day(3) }),
    task('same-job', { host: 'h4', datastore: 'ds2', repository: 'repoB', job: 'j1', lastSuccess: day(4) }),
    task('free', { host: 'h5', datastore: 'ds2', repository: 'repoB', job: 'j2', lastSuccess: day(5) }),
    task('free-too', { host: 'h6', repository: 'repoC', job: 'j3', lastSuccess: day(6) }),
    task('global', { host: 'h7', repository: 'repoC', job: 'j3', lastSuccess: day(7) }),
  ];
  const limits: ConcurrencyLimits = { global: 3, datastore: { default: 1 }, repository: { overrides: { repoA: 1 } }, job: { overrides: { j1: 1 } } };
  assert.deepEqual(ids(planStarts(pending, { running, limits, now: NOW })), {
    start: ['free', 'free-too'],
    waiting: ['same-host:host', 'same-datastore:datastore', 'same-repo:repository', 'same-job:job', 'global:global'],
    windowClosed: [],
  });
});

test('per host: 1 by default, overrides raise or lower it, 0 holds every task of the host', () => {
  const pending = ['a1', 'a2', 'a3', 'b1', 'b2', 'c1'].map((id) => task(id, { host: id[0] as string }));
  assert.deepEqual(ids(planStarts(pending, { running: [], limits: {}, now: NOW })).start, ['a1', 'b1', 'c1']);
  const limits: ConcurrencyLimits = { host: { overrides: { a: 2, c: 0 } } };
  assert.deepEqual(ids(planStarts(pending, { running: [], limits, now: NOW })), {
    start: ['a1', 'a2', 'b1'],
    waiting: ['a3:host', 'b2:host', 'c1:host'],
    windowClosed: [],
  });
  assert.deepEqual(ids(planStarts(pending, { running: [], limits: { host: { default: Infinity } }, now: NOW })).start, ['a1', 'a2', 'a3', 'b1', 'b2', 'c1']);
});

test('no task starts once its job window has closed; other jobs are not affected', () => {
  const pending = [task('late-1', { host: 'a', job: 'windowed' }), task('late-2', { host: 'b', job: 'windowed' }), task('free', { host: 'c', job: 'open' })];
  const windowEnds = { windowed: NOW };
  assert.deepEqual(ids(planStarts(pending, { running: [], limits: {}, now: NOW, windowEnds })), { start: ['free'], waiting: [], windowClosed: ['late-1', 'late-2'] });
  // One millisecond before it closes they may still start.
  assert.deepEqual(ids(planStarts(pending, { running: [], limits: {}, now: new Date(NOW.getTime() - 1), windowEnds })).start, ['late-1', 'late-2', 'free']);
});

test('a limit that is not a whole number >= 0 is refused with E_USAGE', () => {
  for (const limits of [{ global: -1 }, { global: 1.5 }, { host: { default: Number.NaN } }, { job: { overrides: { nightly: -2 } } }] as ConcurrencyLimits[]) {
    assert.throws(() => planStarts([task('x')], { running: [], limits, now: NOW }), (error: unknown) => isCofferError(error, 'E_USAGE') && /concurrency limit/.test(error.message), JSON.stringify(limits));
  }
});

/** A small deterministic generator (xorshift32), so the big inventory is the same every run. */
function random(seed: number) {
  let state = seed;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

test('600 VMs on 160 hosts: every limit holds, no waiting task could have started, priority is respected', () => {
  const next = random(8);
  const vms: PendingTask[] = Array.from({ length: 600 }, (_, i) => ({
    id: `vm${i}`,
    host: `host${Math.floor(next() * 160)}`,
    datastore: `ds${Math.floor(next() * 12)}`,
    repository: `repo${i % 3}`,
    job: `job${i % 5}`,
    lastSuccess: new Date(NOW.getTime() - Math.floor(next() * 30) * 86_400_000),
    missedLastWindow: next() < 0.05,
  }));
  const running = vms.slice(0, 40);
  const pending = vms.slice(40);
  const limits: ConcurrencyLimits = {
    global: 100,
    host: { default: 1, overrides: { host0: 2, host1: 0 } },
    datastore: { default: 12 },
    repository: { default: 50, overrides: { repo2: 20 } },
    job: { overrides: { job4: 15 } },
  };
  const started = performance.now();
  const plan = planStarts(pending, { running, limits, now: NOW });
  const elapsed = performance.now() - started;
  assert.equal(plan.start.length + plan.waiting.length + plan.windowClosed.length, pending.length);

  const limitOf = (layer: 'host' | 'datastore' | 'repository' | 'job', key: string) => limits[layer]?.overrides?.[key] ?? limits[layer]?.default ?? (layer === 'host' ? 1 : Infinity);
  const active = [...running, ...plan.start];
  assert.ok(active.length <= 100, `global: ${active.length}`);
  const counts = new Map<string, number>();
  for (const vm of active) {
    for (const layer of ['host', 'datastore', 'repository', 'job'] as const) {
      const key = `${layer}:${vm[layer] as string}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  // (The running tasks were chosen without limits, so a layer may be over by them alone: only new starts must not add to it.)
  for (const vm of plan.start) {
    for (const layer of ['host', 'datastore', 'repository', 'job'] as const) {
      const limit = limitOf(layer, vm[layer] as string);
      assert.ok((counts.get(`${layer}:${vm[layer] as string}`) ?? 0) <= Math.max(limit, running.filter((r) => r[layer] === vm[layer]).length), `${layer} ${vm[layer] as string}`);
    }
  }
  // Maximal: each waiting task is held by a layer that is full.
  for (const { task: vm, layer } of plan.waiting) {
    if (layer === 'global') assert.equal(active.length, 100);
    else assert.ok((counts.get(`${layer}:${vm[layer] as string}`) ?? 0) >= limitOf(layer, vm[layer] as string), `${vm.id} held by ${layer}`);
  }
  // Priority: no waiting task that is held only by the global limit outranks a started one.
  const rank = (vm: PendingTask) => [vm.missedLastWindow ? 0 : 1, vm.lastSuccess?.getTime() ?? 0] as const;
  const worstStarted = plan.start.map(rank).reduce((a, b) => (b[0] > a[0] || (b[0] === a[0] && b[1] > a[1]) ? b : a));
  for (const { task: vm, layer } of plan.waiting) {
    if (layer !== 'global') continue;
    const r = rank(vm);
    assert.ok(r[0] > worstStarted[0] || (r[0] === worstStarted[0] && r[1] >= worstStarted[1]), `${vm.id} outranks a started task`);
  }
  const layersSeen = new Set(plan.waiting.map((w) => w.layer));
  assert.ok(layersSeen.size >= 3 && layersSeen.has('global') && layersSeen.has('host'), `the case exercises several layers: ${[...layersSeen].join(', ')}`);
  assert.ok(elapsed < 1000, `planned in ${elapsed.toFixed(1)} ms`);
});
