/**
 * The shared queue's hand-out under contention, against a real PostgreSQL: three claimers
 * (each a PostgresTaskQueue on its own connection pool, as three `coffer worker` processes
 * have) take and end 48 backups as fast as they can, every end waking all three (as the
 * NOTIFY fan-out does). The tasks never run: a claimer "ends" a task 50–150 ms after taking it,
 * recording its end as a worker does, so the hand-outs collide as often as they can.
 *
 * Pinned: no task is handed out twice; each ends held by the claimer that took it; and, swept
 * over the tasks' start and end times (the database's clock), the global, per-host,
 * per-datastore, per-repository and per-job limits hold at every instant. A claimer that
 * stops heartbeating (killed) loses its task when the lease expires; another takes it as
 * attempt 2. The hand-outs' timings (TakeTiming) are printed as diagnostics: the lock wait and
 * the time under the lock, the figures behind issue #10's queue-delay row.
 *
 * The source latency guard across workers: two task runners on shared queues (as two
 * `coffer worker` processes, each on its own pool), whose backups run in fake workers (handed
 * out as an agent's) that report the progress and read latency the test gives them through the
 * runner's real, fenced progress write. One worker's slow (or not yet measured) backup holds its
 * datastore for the other's hand-out, until its latency drops, it has read every byte, or its
 * report is older than the taker's lease; other datastores start meanwhile.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sql } from 'kysely';
import type { ConcurrencyLimits } from '../../jobs/index.js';
import { startPostgres, type TestPostgres } from '../../testing/index.js';
import { openStateDatabase, type StateDatabase } from '../state/index.js';
import { TaskRunner, type RemoteWorkers, type VmTarget } from '../tasks/index.js';
import type { WorkerHandle, WorkerListener, WorkerOutcome } from '../worker/index.js';
import { publishPolicy } from './cluster-policy.js';
import { DISPATCH_LOCK_KEY, PostgresTaskQueue, type TakeTiming } from './task-queue.js';

const HOSTS = Array.from({ length: 8 }, (_, i) => `hv${i}`);
const LIMITS: ConcurrencyLimits = {
  global: 5,
  host: { default: 1 },
  datastore: { default: 2 },
  repository: { overrides: { r2: 1 } },
  job: { overrides: { small: 1 } },
};

let pg: TestPostgres;
let url: string;
let state: StateDatabase;
let server: TaskRunner;
const claimerStates: StateDatabase[] = [];

before(async () => {
  pg = await startPostgres();
  url = await pg.createDatabase();
  state = await openStateDatabase({ url });
  server = new TaskRunner(state.db, { dispatch: false });
  await server.start();
  await publishPolicy(state.db, { limits: LIMITS, bandwidth: [], retry: { retries: 0 } });
});

after(async () => {
  await server?.close();
  for (const s of claimerStates) await s.close();
  await state?.close();
  await pg?.stop();
});

/** Backups that are never run (the claimers only take and end them). */
function targets(prefix: string, count: number): VmTarget[] {
  return Array.from({ length: count }, (_, i) => ({
    vm: `${prefix}${i}`, host: HOSTS[i % HOSTS.length] as string, datastore: `ds${i % 3}`,
    repository: { name: i % 4 === 0 ? 'r2' : 'r1', url: '/nonexistent/repository' }, source: { images: ['/nonexistent/disk.raw'] },
  }));
}

/** A claimer: takes up to its capacity, ends each task 50–150 ms later, and takes again at every end anywhere. */
class Claimer {
  readonly taken: string[] = [];
  readonly timings: TakeTiming[] = [];
  private running = 0;
  private pass: Promise<void> | undefined;
  private again = false;

  constructor(readonly name: string, private readonly state: StateDatabase, readonly queue: PostgresTaskQueue, private readonly wakeAll: () => void) {}

  static async open(name: string, capacity: number, leaseMs: number, wakeAll: () => void): Promise<Claimer> {
    const own = await openStateDatabase({ url });
    claimerStates.push(own);
    let claimer: Claimer | undefined;
    const queue = new PostgresTaskQueue(own.db, { name, capacity, leaseMs, onTake: (t) => claimer?.timings.push(t) });
    claimer = new Claimer(name, own, queue, wakeAll);
    return claimer;
  }

  /** One hand-out now, or one more right after the current one (as TaskRunner.dispatch). */
  wake(): Promise<void> {
    if (this.pass !== undefined) {
      this.again = true;
      return this.pass;
    }
    this.pass = (async () => {
      try {
        do {
          this.again = false;
          const { start } = await this.queue.take(this.queue.capacity - this.running);
          for (const row of start) {
            this.taken.push(row.id);
            this.running++;
            setTimeout(() => void this.end(row.id), 50 + Math.random() * 100);
          }
        } while (this.again);
      } finally {
        this.pass = undefined;
      }
    })();
    return this.pass;
  }

  /** Records the end as a worker does (held by this claimer, the database's clock), then wakes everyone. */
  private async end(id: string): Promise<void> {
    await sql`UPDATE tasks SET status = 'succeeded', ended_at = (extract(epoch from clock_timestamp()) * 1000)::bigint WHERE id = ${id} AND worker = ${this.name} AND status = 'running'`.execute(this.state.db);
    this.running--;
    this.wakeAll();
  }
}

test('three claimers under contention: no task handed out twice, every limit holds at every instant', async () => {
  const claimers: Claimer[] = [];
  const wakeAll = () => claimers.forEach((c) => void c.wake().catch(() => undefined));
  for (const name of ['c1', 'c2', 'c3']) claimers.push(await Claimer.open(name, 3, 30_000, wakeAll));
  const big = await server.startRun({ job: 'night', reason: 'on-demand', owner: 'test', vms: targets('vm', 40) });
  const small = await server.startRun({ job: 'small', reason: 'on-demand', owner: 'test', vms: targets('small', 8) });
  // What the claimers' backends wait for, sampled from pg_stat_activity (diagnostics only).
  const waits = new Map<string, number>();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const { rows: active } = await sql<{ wait: string | null }>`SELECT wait_event_type || ':' || wait_event AS wait FROM pg_stat_activity WHERE datname = current_database() AND state <> 'idle' AND pid <> pg_backend_pid()`.execute(state.db);
      for (const a of active) waits.set(a.wait ?? 'running', (waits.get(a.wait ?? 'running') ?? 0) + 1);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  wakeAll();
  const deadline = Date.now() + 60_000;
  for (;;) {
    const left = await state.db.selectFrom('tasks').select((eb) => eb.fn.countAll<string>().as('n')).where('status', '!=', 'succeeded').executeTakeFirstOrThrow();
    if (Number(left.n) === 0) break;
    assert.ok(Date.now() < deadline, `${left.n} tasks still not done after 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
    wakeAll(); // a missed wake-up would otherwise wait for a worker's tick
  }
  await Promise.all(claimers.map((c) => c.wake()));
  sampling = false;
  await sampler;

  const rows = await state.db.selectFrom('tasks').selectAll().where('run_id', 'in', [big.id, small.id]).execute();
  assert.equal(rows.length, 48);
  const handedOut = claimers.flatMap((c) => c.taken.map((id) => ({ id, by: c.name })));
  assert.equal(handedOut.length, 48, 'each task handed out once, none twice');
  assert.equal(new Set(handedOut.map((h) => h.id)).size, 48);
  for (const h of handedOut) assert.equal(rows.find((r) => r.id === h.id)?.worker, h.by, `task ${h.id} is held by the claimer that took it`);
  assert.ok(claimers.every((c) => c.taken.length > 0), `every claimer took some: ${claimers.map((c) => c.taken.length).join(', ')}`);

  // Sweep the starts and ends in time (an end at the same ms as a start comes first: the hand-out reads its clock after the count).
  const events = rows.flatMap((r) => [{ at: Number(r.started_at), delta: 1, row: r }, { at: Number(r.ended_at), delta: -1, row: r }])
    .sort((a, b) => a.at - b.at || a.delta - b.delta);
  const counts = new Map<string, number>();
  let peakGlobal = 0;
  for (const e of events) {
    const keys = ['global', `host:${e.row.host}`, `datastore:${e.row.datastore}`, `repository:${e.row.repository}`, `job:${e.row.job}`];
    for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + e.delta);
    if (e.delta < 0) continue;
    const at = (key: string) => counts.get(key) ?? 0;
    peakGlobal = Math.max(peakGlobal, at('global'));
    assert.ok(at('global') <= 5, `global limit 5: ${at('global')} running at ${e.at}`);
    assert.ok(at(`host:${e.row.host}`) <= 1, `per-host limit 1 on ${e.row.host} at ${e.at}`);
    assert.ok(at(`datastore:${e.row.datastore}`) <= 2, `per-datastore limit 2 on ${e.row.datastore} at ${e.at}`);
    assert.ok(e.row.repository !== 'r2' || at('repository:r2') <= 1, `repository r2 limit 1 at ${e.at}`);
    assert.ok(e.row.job !== 'small' || at('job:small') <= 1, `job small limit 1 at ${e.at}`);
  }
  assert.equal(peakGlobal, 5, 'the global limit was reached (the claimers did contend)');

  const timings = claimers.flatMap((c) => c.timings);
  const taking = timings.filter((t) => t.taken > 0);
  const q = (values: number[]) => {
    const sorted = values.sort((a, b) => a - b);
    const at = (p: number) => (sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? 0).toFixed(1);
    return `median ${at(0.5)} / p90 ${at(0.9)} ms`;
  };
  console.log(`# ${timings.length} hand-outs (${taking.length} took a task): lock wait ${q(taking.map((t) => t.lockWaitMs))}, under the lock ${q(taking.map((t) => t.lockedMs))}, total ${q(taking.map((t) => t.totalMs))}; empty hand-outs: total ${q(timings.filter((t) => t.taken === 0).map((t) => t.totalMs))}; backends seen busy, by wait: ${[...waits].map(([k, n]) => `${k} ${n}`).join(', ')}`);
});

test('a claimer that stops heartbeating loses its task when the lease expires; another takes it as attempt 2', async () => {
  const dead = await Claimer.open('dead', 1, 300, () => undefined);
  // A short lease for the taker too: no lease ends sooner than the taker's lease after PostgreSQL started (this file's server is seconds old).
  const alive = await Claimer.open('alive', 1, 300, () => undefined);
  await server.startRun({ job: 'lease', reason: 'on-demand', owner: 'test', vms: targets('lease', 1) });
  const first = await dead.queue.take(1);
  assert.equal(first.start.length, 1);
  const id = first.start[0]?.id as string;
  assert.equal((await alive.queue.take(1)).start.length, 0, 'held by the first while its lease lasts');
  await new Promise((resolve) => setTimeout(resolve, 400));
  const second = await alive.queue.take(1);
  assert.deepEqual(second.start.map((r) => [r.id, r.worker, Number(r.attempt)]), [[id, 'alive', 2]]);
  const log = await state.db.selectFrom('task_log').select('line').where('task_id', '=', id).execute();
  assert.ok(log.some((l) => /lease of worker dead expired.*attempt 2/.test(l.line)), log.map((l) => l.line).join('\n'));
});

/** Resolves with `promise`'s value, or rejects after `ms` (no test waits for ever). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not done after ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

test('the hand-out\'s first statement takes the dispatch lock only when something is queued for the worker, and waits for it then', async () => {
  // Another hand-out holds the lock (a transaction of its own, released when told).
  const holder = await openStateDatabase({ url });
  claimerStates.push(holder);
  let release: () => void = () => undefined;
  let held: () => void = () => undefined;
  const isHeld = new Promise<void>((resolve) => (held = resolve));
  const holding = holder.db.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(${DISPATCH_LOCK_KEY})`.execute(trx);
    held();
    await new Promise<void>((resolve) => (release = resolve));
  });
  try {
    await within(isHeld, 10_000, 'the holder\'s lock');
    await server.startRun({ job: 'locking', reason: 'on-demand', owner: 'test', vms: [{ vm: 'lock-vm', host: 'lock-a', repository: { name: 'r1', url: '/nonexistent/repository' }, source: { images: ['/nonexistent/disk.raw'] } }] });
    const own = await openStateDatabase({ url });
    claimerStates.push(own);
    const nothingForIt = new PostgresTaskQueue(own.db, { name: 'elsewhere', hosts: ['lock-b'], capacity: 2, leaseMs: 30_000 });
    const empty = await within(nothingForIt.take(2), 5000, 'a take with no work for the worker, while the lock is held (it must not wait for the lock)');
    assert.deepEqual(empty.start, []);
    const mine = new PostgresTaskQueue(own.db, { name: 'lock-taker', hosts: ['lock-a'], capacity: 2, leaseMs: 30_000 });
    let done = false;
    const taking = mine.take(2).finally(() => (done = true));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(done, false, 'a take with work waits for the dispatch lock another hand-out holds');
    release();
    const taken = await within(taking, 10_000, 'the take once the lock was released');
    assert.deepEqual(taken.start.map((r) => [r.vm, r.worker]), [['lock-vm', 'lock-taker']]);
  } finally {
    release();
    await holding;
  }
});

test('a take says which running runs cancel their backups at their window\'s end (the runner needs no read of its own), and ends the queued backups whose window closed', async () => {
  const run = await server.startRun({
    job: 'windowed', reason: 'on-demand', owner: 'test', windowEnd: new Date(Date.now() - 1000), cancelAtWindowEnd: true,
    vms: [{ vm: 'late-vm', host: 'late-host', repository: { name: 'r1', url: '/nonexistent/repository' }, source: { images: ['/nonexistent/disk.raw'] } }],
  });
  const reads: TakeTiming[] = [];
  const queue = new PostgresTaskQueue(state.db, { name: 'windows', hosts: ['late-host'], capacity: 1, leaseMs: 30_000, onTake: (t) => reads.push(t) });
  const full = await queue.take(0);
  assert.ok(full.stopAtWindowEnd.some((r) => r.id === run.id && r.windowEnd < Date.now()), 'told even without a free slot');
  const again = await queue.take(0);
  assert.deepEqual(again.stopAtWindowEnd, full.stopAtWindowEnd, 'the last read\'s list, between reads');
  assert.equal(reads.length, 1, 'a worker with no free slot woken twice within 900 ms reads the database once');
  const free = await queue.take(1);
  assert.deepEqual(free.start, []);
  assert.deepEqual(free.windowClosed.map((r) => r.vm), ['late-vm']);
  assert.ok(free.stopAtWindowEnd.some((r) => r.id === run.id));
});

test('a task cancelled while a hand-out chose it is not handed out (the update takes only rows still queued)', async () => {
  await server.startRun({ job: 'cancelling', reason: 'on-demand', owner: 'test', vms: [{ vm: 'cancel-vm', host: 'cancel-host', repository: { name: 'r1', url: '/nonexistent/repository' }, source: { images: ['/nonexistent/disk.raw'] } }] });
  // The cancel is under way (its row locked, not committed) when the hand-out reads and chooses.
  const canceller = await openStateDatabase({ url });
  claimerStates.push(canceller);
  let commit: () => void = () => undefined;
  let updated: () => void = () => undefined;
  const isUpdated = new Promise<void>((resolve) => (updated = resolve));
  const cancelling = canceller.db.transaction().execute(async (trx) => {
    await sql`UPDATE tasks SET status = 'cancelled', ended_at = (extract(epoch from clock_timestamp()) * 1000)::bigint WHERE vm = 'cancel-vm' AND status = 'queued'`.execute(trx);
    updated();
    await new Promise<void>((resolve) => (commit = resolve));
  });
  try {
    await within(isUpdated, 10_000, 'the cancel\'s update');
    const queue = new PostgresTaskQueue(state.db, { name: 'chooser', hosts: ['cancel-host'], capacity: 1, leaseMs: 30_000 });
    let done = false;
    const taking = queue.take(1).finally(() => (done = true));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(done, false, 'the hand-out chose the task (it was queued when read) and waits for the cancel\'s row lock');
    commit();
    const taken = await within(taking, 10_000, 'the take once the cancel committed');
    assert.deepEqual(taken.start, [], 'the cancelled task is not handed out');
    const row = await state.db.selectFrom('tasks').select(['status', 'worker']).where('vm', '=', 'cancel-vm').executeTakeFirstOrThrow();
    assert.deepEqual([row.status, row.worker], ['cancelled', null]);
  } finally {
    commit();
    await cancelling;
  }
});

/** A backup on `host` and `datastore` that no one runs for real (the fake workers below). */
const backupOn = (vm: string, host: string, datastore: string): VmTarget => ({ vm, host, datastore, repository: { name: 'r1', url: '/nonexistent/repository' }, source: { images: ['/nonexistent/disk.raw'] } });

/**
 * A worker as `coffer worker` assembles it (a TaskRunner on a PostgresTaskQueue of its own
 * pool), without heartbeats (its leases outlast the test) or a tick (the test dispatches), whose
 * backups run in fake workers: `report(vm, …)` is that backup's progress report.
 */
async function guardedWorker(url: string, name: string, hosts: string[], leaseMs = 30_000) {
  const own = await openStateDatabase({ url });
  claimerStates.push(own);
  const listeners = new Map<string, WorkerListener>();
  const remote: RemoteWorkers = {
    agentOf: () => 'fake', online: () => true, waitDeadline: (created) => created + 60_000,
    offlineError: () => ({ code: 'E_AGENT_OFFLINE', message: 'offline' }),
    start: (task, listener): WorkerHandle => {
      listeners.set(task.taskId, listener);
      let end: (outcome: WorkerOutcome) => void = () => undefined;
      const ended = new Promise<WorkerOutcome>((resolve) => (end = resolve));
      const stop = () => end({ kind: 'error', code: 'E_CANCELLED', message: 'stopped by the test' });
      return { pid: undefined, ended, setRates: () => undefined, cancel: stop, kill: stop };
    },
  };
  const queue = new PostgresTaskQueue(own.db, { name, hosts, capacity: 4, leaseMs });
  const runner = new TaskRunner(own.db, { shared: queue, remote, tickMs: 3_600_000 });
  await runner.start();
  const taskOf = async (vm: string) => (await own.db.selectFrom('tasks').select(['id', 'status', 'worker']).where('vm', '=', vm).executeTakeFirstOrThrow());
  return {
    runner, queue,
    /** Takes what it may now; returns the VMs of the backups it runs. */
    async take(): Promise<string[]> {
      await runner.dispatch();
      const rows = await own.db.selectFrom('tasks').select('vm').where('worker', '=', name).where('status', '=', 'running').orderBy('vm').execute();
      return rows.map((r) => r.vm ?? '');
    },
    /** Its backup of `vm` reports `done` of 100 bytes read with a mean read latency; resolves once the report is in the database. */
    async report(vm: string, done: number, latencyMs: number): Promise<void> {
      const task = await taskOf(vm);
      listeners.get(task.id)?.onProgress?.({ done, total: 100, latencyMs, sourceBytesRead: done });
      await waitFor(`${vm}'s report in the database`, async () => {
        const row = await own.db.selectFrom('tasks').select(['source_latency_ms', 'source_read_done']).where('id', '=', task.id).executeTakeFirstOrThrow();
        return row.source_latency_ms !== null && Number(row.source_latency_ms) === latencyMs && Number(row.source_read_done) === (done >= 100 ? 1 : 0) ? true : undefined;
      });
    },
  };
}

async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('the latency guard across workers: another worker\'s slow or unmeasured backup holds its datastore until its reads are fast again or done; other datastores start meanwhile', async () => {
  const url = await pg.createDatabase();
  const db = await openStateDatabase({ url });
  claimerStates.push(db);
  const queuer = new TaskRunner(db.db, { dispatch: false });
  await queuer.start();
  await publishPolicy(db.db, { limits: {}, latencyGuard: { thresholdMs: 20 } });
  const a = await guardedWorker(url, 'wa', ['hv-a', 'hv-a2']);
  const b = await guardedWorker(url, 'wb', ['hv-b1', 'hv-b2', 'hv-b3']);
  try {
    await queuer.startRun({ job: null, reason: 'on-demand', owner: 'test', vms: [backupOn('san-a', 'hv-a', 'san'), backupOn('san-b', 'hv-b1', 'san'), backupOn('nfs-b', 'hv-b2', 'nfs')] });
    assert.deepEqual(await a.take(), ['san-a']);
    assert.deepEqual(await b.take(), ['nfs-b'], 'san is held while wa\'s backup on it has not measured its reads; nfs is not');
    await a.report('san-a', 10, 50);
    assert.deepEqual(await b.take(), ['nfs-b'], 'san is held: wa\'s backup on it reads at 50 ms > 20 ms');
    await a.report('san-a', 20, 35);
    assert.deepEqual(await b.take(), ['nfs-b'], 'still slow');
    await a.report('san-a', 30, 5);
    assert.deepEqual(await b.take(), ['nfs-b', 'san-b'], 'wa\'s backup reads fast again: wb starts its backup on san');

    // A backup that has read every byte no longer speaks for its datastore, however slow its last reads.
    await queuer.startRun({ job: null, reason: 'on-demand', owner: 'test', vms: [backupOn('fc-a', 'hv-a2', 'fc'), backupOn('fc-b', 'hv-b3', 'fc')] });
    assert.deepEqual(await a.take(), ['fc-a', 'san-a']);
    await a.report('fc-a', 50, 80);
    assert.deepEqual(await b.take(), ['nfs-b', 'san-b'], 'fc is held');
    await a.report('fc-a', 100, 80);
    assert.deepEqual(await b.take(), ['fc-b', 'nfs-b', 'san-b'], 'wa\'s backup on fc has read everything');
  } finally {
    await a.runner.close();
    await b.runner.close();
    await queuer.close();
  }
});

test('the latency guard across workers: a slow report older than the taker\'s lease no longer holds (a worker gone quiet does not hold a datastore for ever)', async () => {
  const url = await pg.createDatabase();
  const db = await openStateDatabase({ url });
  claimerStates.push(db);
  const queuer = new TaskRunner(db.db, { dispatch: false });
  await queuer.start();
  await publishPolicy(db.db, { limits: {}, latencyGuard: { thresholdMs: 20 } });
  const a = await guardedWorker(url, 'wa', ['hv-a']);
  const leaseMs = 1500;
  try {
    await queuer.startRun({ job: null, reason: 'on-demand', owner: 'test', vms: [backupOn('quiet-a', 'hv-a', 'iscsi'), backupOn('quiet-c', 'hv-c', 'iscsi')] });
    assert.deepEqual(await a.take(), ['quiet-a']);
    await a.report('quiet-a', 10, 50);
    const reported = Date.now();
    // A taker with a short lease (its own leases would run out: it takes once, at the end).
    const taker = new PostgresTaskQueue(db.db, { name: 'wc', hosts: ['hv-c'], capacity: 1, leaseMs });
    assert.deepEqual((await taker.take(1)).start, [], 'a fresh slow report holds iscsi');
    assert.ok(Date.now() - reported < leaseMs, 'the first take came within the lease (else this test proves nothing)');
    await new Promise((resolve) => setTimeout(resolve, leaseMs + 200 - (Date.now() - reported)));
    assert.deepEqual((await taker.take(1)).start.map((r) => r.vm), ['quiet-c'], 'the report is older than a lease: one probe starts');
  } finally {
    await a.runner.close();
    await queuer.close();
  }
});
