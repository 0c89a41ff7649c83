/**
 * A night's run at reduced size, measured (not a test itself): `coffer worker` processes on
 * a shared PostgreSQL take the backups of a run a server queued, and the tasks' rows say how
 * long the night took and how long each task waited in the queue once it could run. Used by
 * the planning model's check (night-run.integ.test.ts) and the workers' benchmark
 * (bench/workers.ts).
 *
 * Each task is paced by its source, as a worker on its own machine reading a hypervisor's
 * disk is: one bandwidth rule per host (`source-read`, scoped to that host), and with the
 * per-host limit of 1 each running backup has its host's rule to itself. So the tasks' reads,
 * not this machine's CPUs, set the pace, and added workers add throughput as separate
 * machines would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Kysely } from 'kysely';
import type { StateSchema } from '../state/index.js';
import type { BandwidthRule, TaskRunner, VmTarget } from '../tasks/index.js';
import { publishPolicy } from './cluster-policy.js';
import { relayEvents } from './event-relay.js';
import { WorkerRegistry } from './worker-registry.js';

const COFFER_BIN = fileURLToPath(new URL('../../../../bin/coffer.js', import.meta.url));

/** One backup of the night, times in ms on the database's clock (started) and the worker's (ended): one machine here. */
export interface TaskTiming {
  readonly vm: string;
  readonly host: string;
  readonly worker: string;
  readonly createdAt: number;
  readonly startedAt: number;
  readonly endedAt: number;
  readonly status: string;
}

export interface NightRunResult {
  /** From the run's creation (every task queued) to the last task's end. */
  readonly nightMs: number;
  readonly tasks: readonly TaskTiming[];
  /**
   * Per task, the queue's delay: from the moment it could run — the later of its creation and
   * the last end, before its start, of a task on its host or on the worker that took it (what
   * freed the slot) — to its start (the hand-out's commit).
   */
  readonly queueDelaysMs: readonly number[];
}

/** Workers started as an administrator starts them. */
export interface WorkerProcesses {
  readonly names: readonly string[];
  /** What they printed (for a failure's message). */
  output(): string;
  /** What one of them printed on its standard output. */
  stdoutOf(name: string): string;
  /** SIGKILL to each still running; resolves when they have exited. */
  kill(): Promise<void>;
}

/** The limits and rules of the night: per-host limit 1, each host's reads at `readBytesPerSecond`. */
export async function publishNightPolicy(db: Kysely<StateSchema>, hosts: readonly string[], readBytesPerSecond: number): Promise<void> {
  const bandwidth: BandwidthRule[] = hosts.map((host) => ({ direction: 'source-read', bytesPerSecond: readBytesPerSecond, hosts: [host] }));
  await publishPolicy(db, { limits: { host: { default: 1 } }, bandwidth, retry: { retries: 0 } });
}

/**
 * Starts `count` `coffer worker` processes (every host, `tasks` each) and waits until they
 * heartbeat and say they are ready to take (at most `timeoutMs`).
 * @throws Error when they do not register in time (they are killed first).
 */
export async function startWorkerProcesses(db: Kysely<StateSchema>, url: string, options: { count: number; tasks: number; prefix: string; leaseS?: number; timeoutMs?: number; env?: Record<string, string>; traceQueue?: boolean }): Promise<WorkerProcesses> {
  const children: ChildProcess[] = [];
  let output = '';
  const stdouts = new Map<string, string>();
  const names = Array.from({ length: options.count }, (_, i) => `${options.prefix}${i + 1}`);
  for (const name of names) {
    const child = spawn(process.execPath, [COFFER_BIN, 'worker', '--database', url, '--name', name, '--tasks', String(options.tasks), '--lease', String(options.leaseS ?? 5), '--stop-timeout', '5', ...(options.traceQueue === true ? ['--trace-queue'] : [])], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
    child.stdout?.setEncoding('utf8').on('data', (t: string) => {
      output += `${name}: ${t}`;
      stdouts.set(name, (stdouts.get(name) ?? '') + t);
    });
    child.stderr?.setEncoding('utf8').on('data', (t: string) => (output += `${name}: ${t}`));
    children.push(child);
  }
  const processes: WorkerProcesses = {
    names,
    output: () => output,
    stdoutOf: (name) => stdouts.get(name) ?? '',
    async kill() {
      await Promise.all(children.map((child) => new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      })));
    },
  };
  const registry = new WorkerRegistry(db);
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  // Registered is not ready: a worker registers before it listens for wake-ups and takes; its
  // "worker NAME: …" line comes after (cluster-worker.ts). A run queued before would measure
  // the worker's start-up as queue delay (on a loaded machine, seconds).
  const ready = (name: string) => (stdouts.get(name) ?? '').includes(`worker ${name}: `);
  for (;;) {
    const alive = (await registry.list(10_000)).filter((w) => w.alive && names.includes(w.name)).length;
    if (alive === names.length && names.every(ready)) return processes;
    if (Date.now() > deadline) {
      await processes.kill();
      throw new Error(`${names.length - alive} of ${names.length} workers did not register and get ready within ${options.timeoutMs ?? 30_000} ms:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Queues one run of `vms` through `runner` (a server's runner that does not dispatch), telling
 * the workers as a server does (its events relayed over NOTIFY), and measures it from the
 * tasks' rows once it has ended.
 * @throws Error when the run has not ended within `timeoutMs`, or a task did not succeed.
 */
export async function runNight(db: Kysely<StateSchema>, runner: TaskRunner, vms: readonly VmTarget[], timeoutMs: number): Promise<NightRunResult> {
  const relay = relayEvents(runner.events, db);
  const run = await runner.startRun({ job: 'night', reason: 'on-demand', owner: 'planning', vms: [...vms] });
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const now = await runner.getRun(run.id);
      if (now.status !== 'running') break;
      if (Date.now() > deadline) throw new Error(`the night's run ${run.id} still runs after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    await relay.idle();
    relay.stop();
  }
  const rows = await db.selectFrom('tasks').select(['vm', 'host', 'worker', 'created_at', 'started_at', 'ended_at', 'status', 'error_message']).where('run_id', '=', run.id).execute();
  const failed = rows.filter((r) => r.status !== 'succeeded');
  if (failed.length > 0) throw new Error(`${failed.length} of ${rows.length} backups did not succeed: ${failed.slice(0, 3).map((r) => `${r.vm} ${r.status} ${r.error_message ?? ''}`).join('; ')}`);
  const tasks: TaskTiming[] = rows.map((r) => ({ vm: r.vm ?? '', host: r.host ?? '', worker: r.worker ?? '', createdAt: Number(r.created_at), startedAt: Number(r.started_at), endedAt: Number(r.ended_at), status: r.status }));
  const first = Math.min(...tasks.map((t) => t.createdAt));
  const last = Math.max(...tasks.map((t) => t.endedAt));
  return { nightMs: last - first, tasks, queueDelaysMs: queueDelays(tasks) };
}

/** See {@link NightRunResult.queueDelaysMs}. */
export function queueDelays(tasks: readonly TaskTiming[]): number[] {
  return tasks.map((task) => {
    const freedBy = tasks.filter((o) => o !== task && (o.host === task.host || o.worker === task.worker) && o.endedAt <= task.startedAt).map((o) => o.endedAt);
    return Math.max(0, task.startedAt - Math.max(task.createdAt, ...freedBy));
  });
}

/** The median and the largest of `values`. */
export function medianAndMax(values: readonly number[]): { median: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)] ?? 0, max: sorted.at(-1) ?? 0 };
}
