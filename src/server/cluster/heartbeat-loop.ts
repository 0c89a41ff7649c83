/**
 * A worker's heartbeat loop (worker-registry.ts says what one heartbeat does), shared by
 * `coffer worker` and a server that runs tasks itself on a PostgreSQL database. Each beat:
 * renew the leases of the tasks the runner holds, apply the policy the servers published when
 * it changed, re-share the bandwidth rules by the cluster's count of running backups, cancel
 * what someone asked to cancel, stop (without recording) the tasks whose lease was lost, and
 * notice a drain request. Cut off from the database for longer than a lease, it stops every
 * task it still runs (another worker may have them by then), but not one that ended here and
 * waits for its end to be recorded (the runner retries that until the database answers).
 */
import type { Kysely } from 'kysely';
import type { StateSchema } from '../state/index.js';
import type { TaskRunner } from '../tasks/index.js';
import { readPolicy } from './cluster-policy.js';
import type { PostgresTaskQueue } from './task-queue.js';
import type { WorkerRegistry } from './worker-registry.js';

export interface HeartbeatOptions {
  db: Kysely<StateSchema>;
  registry: WorkerRegistry;
  runner: TaskRunner;
  queue: PostgresTaskQueue;
  name: string;
  leaseMs: number;
  heartbeatMs: number;
  print(line: string): void;
  /** A drain was asked for (the queue is paused already). */
  onDrain?(): void;
  /** Draining and no task left. */
  onIdle?(): void;
  /** Keep the process alive while it beats (a `coffer worker`; a server has its listener). */
  keepAlive?: boolean;
}

export function startHeartbeats(options: HeartbeatOptions): { stop(): Promise<void>; readonly draining: boolean } {
  const { registry, runner, queue, name, leaseMs } = options;
  let lastBeat = Date.now();
  let draining = false;
  let policyText: string | undefined;
  const figures = () => ({ tasksDone: runner.finishedTasks, bytesRead: runner.finishedBytes });
  const beat = async () => {
    const held = runner.runningWorkers().map((w) => w.taskId);
    try {
      // A link that went dead answers nothing (no reset): a beat that takes longer than half a lease failed.
      const answer = await withDeadline(registry.heartbeat(name, held, leaseMs, figures()), leaseMs / 2);
      lastBeat = Date.now();
      queue.setClusterLoad(answer.clusterBackups);
      const policy = await withDeadline(readPolicy(options.db), leaseMs / 2);
      const text = JSON.stringify(policy);
      if (policyText !== undefined && text !== policyText) runner.setPolicies({ bandwidth: policy.bandwidth, retry: policy.retry, latencyGuard: policy.latencyGuard });
      policyText = text;
      runner.rebalance();
      for (const id of answer.cancel) runner.cancelLocal(id, 'a cancel request');
      for (const id of answer.lost) if (runner.abandon(id)) options.print(`task ${id}: lease lost (taken back by the queue); stopped here`);
      if (answer.draining && !draining) {
        draining = true;
        queue.paused = true;
        options.print(`worker ${name}: draining (takes nothing new; exits when its ${held.length} task(s) end)`);
        options.onDrain?.();
      }
      if (draining && runner.runningWorkers().length === 0) options.onIdle?.();
    } catch (error) {
      if (Date.now() - lastBeat > leaseMs) {
        // A task that ended here and waits for its end to be recorded is kept: it is done (a
        // backup made), killing it changes nothing, and after a restart its lease is renewed.
        const pending = held.filter((id) => runner.endPending(id));
        const stopped = held.filter((id) => !runner.endPending(id) && runner.abandon(id));
        const kept = pending.length === 0 ? '' : `; ${pending.length} ended here, their end waits for the database`;
        if (stopped.length > 0 || pending.length > 0) options.print(`worker ${name}: no heartbeat for ${Date.now() - lastBeat} ms (${(error as Error).message.split('\n')[0] ?? ''}): its leases may have expired, its ${stopped.length} task(s) stopped${kept}`);
      }
    }
  };
  let beating: Promise<void> | undefined;
  const timer = setInterval(() => {
    beating ??= beat().finally(() => (beating = undefined));
  }, options.heartbeatMs);
  if (options.keepAlive !== true) timer.unref();
  return {
    get draining() {
      return draining;
    },
    async stop() {
      clearInterval(timer);
      await beating;
      await registry.stopped(name, figures()).catch(() => undefined);
    },
  };
}

function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => (timer = setTimeout(() => reject(new Error(`the database did not answer within ${Math.round(ms)} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
