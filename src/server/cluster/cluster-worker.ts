/**
 * `coffer worker`: a process near a group of hypervisors that takes tasks from the queue in
 * PostgreSQL (task-queue.ts) and runs each in a worker process of its own, exactly as the
 * single-process server does (the same TaskRunner, with a shared queue instead of its own
 * dispatch). It registers (worker-registry.ts), heartbeats every `heartbeatMs` (renewing its
 * leases), applies the policy the servers publish (cluster-policy.ts), and stops:
 *
 * - on its signal (SIGTERM, Ctrl-C): takes nothing new, lets running tasks finish or cancels
 *   them within `stopTimeoutMs`, records a clean stop;
 * - when drained: takes nothing new and exits once its tasks have ended;
 * - cut off from the database for longer than a lease: it kills its tasks without recording
 *   them (another worker has them by then) and goes on trying to reach the database.
 */
import { hostname } from 'node:os';
import { CofferError } from '../../errors/index.js';
import { openStateDatabase, POOL_DEFAULTS } from '../state/index.js';
import { TaskRunner } from '../tasks/index.js';
import type { WorkerOptions } from '../worker/index.js';
import { readPolicy } from './cluster-policy.js';
import { startHeartbeats } from './heartbeat-loop.js';
import { relayEvents } from './event-relay.js';
import { wakeOnQueueChanges } from './queue-wakeups.js';
import { PostgresTaskQueue, type TakeTiming } from './task-queue.js';
import { WorkerRegistry } from './worker-registry.js';

export interface ClusterWorkerOptions {
  /** `postgres://…` */
  database: string;
  name: string;
  /** The hosts it reaches; undefined: every host. */
  hosts?: readonly string[];
  /** Tasks at once. */
  capacity: number;
  /** Lease length, ms (default 30 s). */
  leaseMs?: number;
  /** Heartbeat interval, ms (default a third of the lease). */
  heartbeatMs?: number;
  /** At a signal: how long running tasks get, ms (default 10 s). */
  stopTimeoutMs?: number;
  version: string;
  print(line: string): void;
  signal: AbortSignal;
  worker?: WorkerOptions;
  threads?: number;
  /** Print one `queue: {json}` line per hand-out with its timings (TakeTiming; bench/workers.ts reads them). */
  traceQueue?: boolean;
}

export const DEFAULT_LEASE_MS = 30_000;

/**
 * How long a process holding leases of `leaseMs` may sit idle inside a transaction before
 * PostgreSQL ends its session (postgres-pool.ts): no longer than a lease, so that a worker cut
 * off in the middle of a hand-out (holding the dispatch lock) or of a task's end (holding its
 * rows) stalls the others no longer than its tasks' leases last.
 */
export function idleInTransactionFor(leaseMs: number): number {
  return Math.min(leaseMs, POOL_DEFAULTS.idleInTransactionMs);
}
/** How long a starting worker waits for its LISTEN connection before it goes on without it (its tick still takes), ms. */
const LISTEN_READY_WAIT_MS = 5000;

/** Runs until stopped or drained. @throws CofferError E_USAGE (not PostgreSQL, a live worker of that name), E_STATE_UNAVAILABLE. */
export async function runClusterWorker(options: ClusterWorkerOptions): Promise<void> {
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const heartbeatMs = options.heartbeatMs ?? Math.max(100, Math.floor(leaseMs / 3));
  if (!(heartbeatMs < leaseMs)) throw new CofferError('E_USAGE', `the heartbeat (${heartbeatMs} ms) must come more often than the lease lasts (${leaseMs} ms)`);
  const state = await openStateDatabase({ url: options.database, idleInTransactionMs: idleInTransactionFor(leaseMs) });
  let wakeups: { close(): Promise<void> } | undefined;
  try {
    if (state.dialect !== 'postgres') throw new CofferError('E_USAGE', `coffer worker needs the PostgreSQL state database the servers use (postgres://…), not ${state.label}`);
    const db = state.db;
    const registry = new WorkerRegistry(db);
    await registry.register({ name: options.name, ...(options.hosts === undefined ? {} : { hosts: options.hosts }), capacity: options.capacity, version: options.version, pid: process.pid, machine: hostname() }, leaseMs);
    const queue = new PostgresTaskQueue(db, { name: options.name, ...(options.hosts === undefined ? {} : { hosts: options.hosts }), capacity: options.capacity, leaseMs,
      ...(options.traceQueue === true ? { onTake: (t: TakeTiming) => options.print(`queue: ${JSON.stringify(roundedTiming(t))}`) } : {}) });
    const policy = await readPolicy(db);
    const runner = new TaskRunner(db, {
      limits: policy.limits, bandwidth: policy.bandwidth, retry: policy.retry, shared: queue, tickMs: Math.min(1000, heartbeatMs),
      ...(policy.latencyGuard === null ? {} : { latencyGuard: policy.latencyGuard }),
      ...(options.worker === undefined ? {} : { worker: options.worker }), ...(options.threads === undefined ? {} : { threads: options.threads }),
    });
    let lastComplaint = 0;
    runner.events.on('error', (error: unknown) => {
      if (Date.now() - lastComplaint < 5000) return;
      lastComplaint = Date.now();
      options.print(`warning: ${(error as Error).message.split('\n')[0] ?? ''}`);
    });
    const relay = relayEvents(runner.events, db);
    // A run started or a task ended anywhere: take at once, not at the next pass.
    const listening = wakeOnQueueChanges(options.database, () => void runner.dispatch());
    wakeups = listening;
    // Ready (the line below) once it hears wake-ups: a run queued before would wait for the tick. Bounded: the tick takes over.
    await Promise.race([listening.ready, new Promise<void>((resolve) => setTimeout(resolve, LISTEN_READY_WAIT_MS).unref())]);
    await runner.start();
    options.print(`worker ${options.name}: ${options.capacity} task(s) at once, hosts ${options.hosts?.join(',') ?? '(all)'}, lease ${leaseMs} ms, database ${state.label}`);

    let idleResolve: (() => void) | undefined;
    const idle = new Promise<void>((resolve) => (idleResolve = resolve));
    const heartbeats = startHeartbeats({ db, registry, runner, queue, name: options.name, leaseMs, heartbeatMs, print: options.print, onIdle: () => idleResolve?.(), keepAlive: true });
    const aborted = new Promise<void>((resolve) => {
      if (options.signal.aborted) resolve();
      else options.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await Promise.race([aborted, idle]);
    queue.paused = true;
    options.print(heartbeats.draining ? `worker ${options.name}: drained` : `worker ${options.name}: stopping`);
    // Keep heartbeating (the leases) while the running tasks end.
    await runner.drain(options.stopTimeoutMs ?? 10_000);
    await heartbeats.stop();
    await relay.idle();
    relay.stop();
    options.print(`worker ${options.name}: stopped (${runner.finishedTasks} task(s) done)`);
  } finally {
    await wakeups?.close();
    await state.close();
  }
}

function roundedTiming(t: TakeTiming): TakeTiming {
  const ms = (v: number) => Math.round(v * 100) / 100;
  return { ...t, readMs: ms(t.readMs), lockWaitMs: ms(t.lockWaitMs), lockedMs: ms(t.lockedMs), totalMs: ms(t.totalMs) };
}
