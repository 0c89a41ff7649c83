/**
 * The task runner: keeps the queue of tasks in the state database, starts each in a worker
 * process when the layered limits allow (the dispatcher), hands out bandwidth shares, ends
 * tasks and runs, retries failed VMs, and recovers after a crash.
 *
 * Dispatch happens whenever something changes (a task is queued or ends, a limit is set) and
 * on a tick (`tickMs`, for retries coming due and time-of-day bandwidth rules). Each pass:
 * tasks whose run's window closed are ended (`cancelled`, E_WINDOW_CLOSED) and their VMs
 * marked to go first next time; the rest go through jobs' `planStarts` (global, per host,
 * per datastore, per repository, per job limits; missed-window VMs, then the oldest last
 * success first); the ones it picks start.
 *
 * Crash safety: a task is `running` in the database before its worker starts. At start,
 * {@link TaskRunner.start} marks tasks still `running` (their server was killed) as
 * `interrupted` and retries them per policy. Their workers died with the server (a worker
 * aborts when its IPC channel closes), their snapshots were never written (manifest last),
 * and their leases expire or were released: the repository needs nothing.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Kysely, Selectable } from 'kysely';
import type { VmBackupResult, VmBackupSpec } from '../../backup/index.js';
import { CofferError } from '../../errors/index.js';
import type { ConcurrencyLimits, RunningTask } from '../../jobs/index.js';
import type { StateSchema, TaskTable } from '../state/schema.js';
import { startWorker, type TaskReport, type WorkerHandle, type WorkerListener, type WorkerOptions, type WorkerRates } from '../worker/index.js';
import { BandwidthRules, type BandwidthRule, type BandwidthSubject } from './bandwidth-rules.js';
import { chooseStarts } from './choose-starts.js';
import { cappedRates, ReadThrottle, type ReadThrottleOptions } from './read-throttle.js';
import { retryAt, runEnd, taskEnd, type RetryPolicy } from './outcomes.js';
import { TaskStore, type EndedWindow, type RunFilter, type TaskFilter } from './task-store.js';
import type { Page, RunInfo, RunStatus, RunReason, TaskInfo, TaskKind, TaskLogLine, VmTarget } from './task-types.js';

/** The source latency guard's settings (docs/tasks.md "How the limits apply"). */
export interface LatencyGuard {
  /** Mean source read latency above which a datastore is held and a backup slowed, ms. */
  thresholdMs: number;
  /** Slow the running backups whose reads are above the threshold (default true). */
  throttle?: boolean;
  /** The lowest read cap the throttle sets, bytes per second (default 1 MiB/s; at least 1024). */
  minBytesPerSecond?: number;
}

/** The throttle's floor by default: slow enough to relieve a struggling array, fast enough that a capped backup still ends. */
const DEFAULT_MIN_THROTTLE_RATE = 1024 * 1024;

/** Options of {@link TaskRunner}. */
export interface TaskRunnerOptions {
  /** Concurrency limits (per host 1 by default); see jobs/planner/limits.ts. */
  limits?: ConcurrencyLimits;
  bandwidth?: readonly BandwidthRule[];
  retry?: RetryPolicy;
  /** The clock for the database's times, windows and retries. */
  now?: () => Date;
  /** How often to dispatch without a change, ms (default 1000). */
  tickMs?: number;
  worker?: WorkerOptions;
  /** Codec threads per worker (default: every core). */
  threads?: number;
  /**
   * Source latency guard: no new task starts on a datastore while a backup running on it
   * reads with a mean latency above `thresholdMs`, or has not measured it yet (one probe at a
   * time); and each running backup whose reports are above it has its source reads capped
   * (read-throttle.ts) unless `throttle` is false. Off by default.
   */
  latencyGuard?: LatencyGuard;
  /**
   * Scale-out (#10; docs/scale.md): take tasks from a queue shared by several processes
   * (PostgreSQL, src/server/cluster/) instead of choosing from this process's memory. Without
   * it (the default, SQLite), the runner dispatches by itself as it always did.
   */
  shared?: SharedDispatch;
  /** false: this process never starts a task (an API-and-scheduler server; workers elsewhere do). Default true. */
  dispatch?: boolean;
  /** Backups that run in an agent instead of a worker process (src/server/agents/, docs/agent.md). */
  remote?: RemoteWorkers;
}

/**
 * Where backups of VMs whose source is an agent run (src/server/agents/ implements it): the
 * runner starts such a task only while its agent is online; while it is offline the task stays
 * queued, outside the limits, until its run's window closes or, without a window, until
 * `waitDeadline` — then it fails with `offlineError`. A started one is followed through the
 * same {@link WorkerHandle} as a local worker: progress, logs, result, cancel.
 */
export interface RemoteWorkers {
  /** The agent that runs a task of this spec (a VmBackupSpec), or undefined for a local one. */
  agentOf(spec: unknown): string | undefined;
  online(agent: string): boolean;
  /** A task queued at `created` (ms) in a run without a window fails when its agent is still offline then. */
  waitDeadline(created: number): number;
  offlineError(agent: string): { code: string; message: string };
  /** Hands the task to its agent. Never throws: a failure settles `ended`. */
  start(task: { taskId: string; spec: unknown; repository: string; rates: WorkerRates }, listener: WorkerListener): WorkerHandle;
}

/**
 * What a shared queue gives the runner (src/server/cluster/ implements it on PostgreSQL).
 * The runner then does not mark tasks left `running` as interrupted at start (other processes
 * may be running them; leases expire instead) and runs at most `capacity` tasks at once.
 */
export interface SharedDispatch {
  /** How many tasks this process runs at once. */
  readonly capacity: number;
  /** This process's name: it ends, and reports on, only the tasks it holds (a fence against a lost lease). */
  readonly holder: string;
  /**
   * Takes up to `free` tasks this process may start now (already `running` and held by it in
   * the database), the queued tasks whose window closed, and the runs whose last task the
   * queue ended (a lease that expired too often), and the running runs whose policy cancels
   * their backups when their window ends (read by the same statement as the rest).
   */
  take(free: number): Promise<{ start: Selectable<TaskTable>[]; windowClosed: Selectable<TaskTable>[]; endedRuns: string[]; stopAtWindowEnd: { id: string; windowEnd: number }[] }>;
  /**
   * The tasks under the bandwidth rules across every process (for the shares), when known:
   * counts for unscoped rules, and the running backups themselves (this process's included)
   * for rules scoped to hosts or repositories.
   */
  load(): { reading: number; running: number; backups?: readonly SharedBackup[] } | undefined;
  /**
   * A write that must not be lost (a task's end and its bookkeeping) is retried this long while
   * the database is away, ms; the task stays held (its lease renewed) meanwhile.
   */
  readonly persistMs: number;
}

/** A backup running somewhere in the cluster, as a scoped bandwidth rule sees it. */
export interface SharedBackup {
  readonly id: string;
  readonly host: string;
  readonly repository: string;
}

/** What a new run covers. */
export interface RunRequest {
  job: string | null;
  reason: RunReason;
  owner: string;
  vms: readonly VmTarget[];
  /** The scheduled time it is for. */
  firing?: Date;
  /** No VM of it starts at or after this instant. */
  windowEnd?: Date;
  /** Cancel its backups still running when the window closes (default: they finish). */
  cancelAtWindowEnd?: boolean;
  tags?: readonly string[];
}

/**
 * A task of a kind other than backup (worker/kinds/), asked for through the API: it belongs
 * to no run and starts at once, outside the backups' limits (a restore under pressure does
 * not queue behind the night's backups; these tasks read the repository, not the hosts).
 */
export interface TaskRequest {
  kind: Exclude<TaskKind, 'backup'>;
  owner: string;
  /** The kind's spec (worker/kinds/kind-specs.ts). */
  spec: unknown;
  repository: string;
  vm?: string;
}

interface Running {
  kind: TaskKind;
  runId: string | null;
  handle: WorkerHandle;
  placement: RunningTask;
  cancelRequested: boolean;
  /** Why it was cancelled, when not by a person. */
  cancelReason?: { code: string; message: string };
  /** Until its progress says every byte is read: it counts under the read bandwidth rules. */
  reading: boolean;
  /** Its share of the bandwidth rules. */
  share: WorkerRates;
  /** A backup's read cap under the latency guard (none when the throttle is off). */
  throttle: ReadThrottle | undefined;
  /** What it was last sent: the share, its reads capped by the throttle. */
  rates: WorkerRates;
  /** The mean source read latency it last reported, ms. */
  latencyMs: number | undefined;
}

/**
 * Events (an EventEmitter, for server-sent events): `task` (TaskInfo) on every change of a
 * task, progress included; `run` (RunInfo) when a run starts or ends; `log` ({ taskId, ...line }).
 */
export class TaskRunner {
  readonly events = new EventEmitter();
  private readonly store: TaskStore;
  private readonly now: () => Date;
  private limits: ConcurrencyLimits;
  private bandwidth: BandwidthRules;
  private retry: RetryPolicy;
  private readonly running = new Map<string, Running>();
  private dispatching: Promise<void> | undefined;
  private again = false;
  private draining = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(db: Kysely<StateSchema>, private readonly options: TaskRunnerOptions = {}) {
    this.store = new TaskStore(db, options.shared?.holder);
    this.now = options.now ?? (() => new Date());
    this.limits = options.limits ?? {};
    this.bandwidth = new BandwidthRules(options.bandwidth ?? []);
    this.retry = options.retry ?? {};
    this.guard = options.latencyGuard;
    this.throttle = throttleOptions(options.latencyGuard);
    this.events.setMaxListeners(0);
  }

  /** The latency guard now (options.latencyGuard, then setPolicies). */
  private guard: LatencyGuard | undefined;
  /** The latency guard's throttle settings, or undefined when it is off. */
  private throttle: ReadThrottleOptions | undefined;

  /**
   * Recovers from the previous process (tasks left `running` become `interrupted` and are
   * retried per policy) and starts dispatching. Returns the interrupted tasks.
   */
  async start(): Promise<TaskInfo[]> {
    const interrupted: TaskInfo[] = [];
    const now = this.now().getTime();
    // With a shared queue, tasks running elsewhere are not ours to interrupt: their leases say.
    const recover = this.options.shared === undefined && this.options.dispatch !== false;
    for (const row of recover ? await this.store.tasksIn('running') : []) {
      if (!(await this.store.finish(row.id, { status: 'interrupted', now, error: { code: 'E_INTERRUPTED', message: 'the server stopped while the task ran' } }))) continue;
      await this.log(row.id, 'error', 'interrupted: the server stopped while the task ran');
      await this.retryIfAllowed(row, now);
      const info = await this.store.getTask(row.id);
      if (info !== undefined) interrupted.push(info);
    }
    for (const run of await this.store.runningRuns()) await this.checkRun(run.id);
    this.timer = setInterval(() => void this.dispatch(), this.options.tickMs ?? 1000);
    this.timer.unref();
    await this.dispatch();
    return interrupted;
  }

  /** The concurrency limits in force. */
  limitsNow(): ConcurrencyLimits {
    return this.limits;
  }

  /** Replaces the concurrency limits (a config edit); takes effect at once. */
  setLimits(limits: ConcurrencyLimits): void {
    this.limits = limits;
    void this.dispatch();
  }

  /**
   * Replaces the bandwidth rules, the retry policy and the latency guard (null: none; a config
   * edit): running workers get their new shares and throttles at once; the retry policy
   * applies to the next failure.
   * @throws CofferError E_USAGE for a bad rule or guard (nothing changes then).
   */
  setPolicies(policies: { bandwidth?: readonly BandwidthRule[]; retry?: RetryPolicy; latencyGuard?: LatencyGuard | null }): void {
    // Every part is checked before any is applied.
    const bandwidth = policies.bandwidth === undefined ? undefined : new BandwidthRules(policies.bandwidth);
    const guard = policies.latencyGuard === undefined ? undefined : { guard: policies.latencyGuard ?? undefined, throttle: throttleOptions(policies.latencyGuard ?? undefined) };
    if (bandwidth !== undefined) this.bandwidth = bandwidth;
    if (policies.retry !== undefined) this.retry = policies.retry;
    if (guard !== undefined) this.setLatencyGuard(guard.guard, guard.throttle);
    this.rebalance(this.now());
  }

  /**
   * A new latency guard (undefined: none) and its checked throttle settings: the running
   * backups still reading get fresh throttles under it (their caps start over), or lose theirs
   * when it no longer throttles (the next dispatch, at the latest the next tick, looks at the
   * held datastores again).
   */
  private setLatencyGuard(guard: LatencyGuard | undefined, throttle: ReadThrottleOptions | undefined): void {
    if (JSON.stringify(guard) === JSON.stringify(this.guard)) return;
    this.guard = guard;
    this.throttle = throttle;
    for (const r of this.running.values()) {
      if (r.kind === 'backup') r.throttle = throttle !== undefined && r.reading ? new ReadThrottle(throttle) : undefined;
    }
  }

  /** Starts a run: one queued backup task per VM. */
  async startRun(request: RunRequest): Promise<RunInfo> {
    if (this.draining) throw new CofferError('E_USAGE', 'the server is shutting down: no new run starts');
    const id = randomUUID();
    const now = this.now().getTime();
    const run = {
      id, job: request.job, reason: request.reason, status: 'running' as const, owner: request.owner, vms: request.vms.map((v) => v.vm),
      ...(request.firing === undefined ? {} : { firing: request.firing.getTime() }),
      ...(request.windowEnd === undefined ? {} : { windowEnd: request.windowEnd.getTime() }),
      ...(request.cancelAtWindowEnd === true ? { cancelAtWindowEnd: true } : {}),
    };
    const tasks = request.vms.map((target) => {
      const spec: VmBackupSpec = {
        repository: { url: target.repository.url, ...(target.repository.passphraseFile === undefined ? {} : { passphraseFile: target.repository.passphraseFile }) },
        vm: target.vm, host: target.host, source: target.source,
        tags: [...(target.tags ?? []), ...(request.tags ?? [])],
        ...(target.verifyUnchanged === undefined ? {} : { verifyUnchanged: target.verifyUnchanged }),
        ...(request.job === null ? {} : { job: request.job }),
        ...(this.options.threads === undefined ? {} : { threads: this.options.threads }),
      };
      return {
        id: randomUUID(), runId: id, kind: 'backup' as const, owner: request.owner, vm: target.vm, host: target.host,
        ...(target.datastore === undefined ? {} : { datastore: target.datastore }),
        repository: target.repository.name, ...(request.job === null ? {} : { job: request.job }), spec, attempt: 1,
      };
    });
    await this.store.insertRunWithTasks(run, tasks, now);
    this.events.emit('run', (await this.store.getRun(id)) as RunInfo);
    if (request.vms.length === 0) await this.checkRun(id);
    void this.dispatch();
    return (await this.store.getRun(id)) as RunInfo;
  }

  /** Queues a task of another kind than backup; it starts at the next dispatch. Returns it. */
  async submitTask(request: TaskRequest): Promise<TaskInfo> {
    if (this.draining) throw new CofferError('E_USAGE', 'the server is shutting down: no new task starts');
    const id = randomUUID();
    await this.store.insertTask({
      id, runId: null, kind: request.kind, owner: request.owner, repository: request.repository,
      ...(request.vm === undefined ? {} : { vm: request.vm }), spec: request.spec, attempt: 1,
    }, this.now().getTime());
    await this.log(id, 'info', `${request.kind} asked for by ${request.owner}`);
    await this.changed(id);
    await this.dispatch();
    return this.getTask(id);
  }

  /** Backs up one VM now (a run of its own, reason `vm`); returns its task. */
  async backupNow(target: VmTarget, owner: string, job: string | null = null): Promise<TaskInfo> {
    const run = await this.startRun({ job, reason: 'vm', owner, vms: [target] });
    const [task] = (await this.store.listTasks({ runId: run.id })).items;
    return task as TaskInfo;
  }

  /**
   * Resolves with the task once it is in a final state (for `?wait=true`), or with its state
   * at the deadline. @throws CofferError E_TASK_NOT_FOUND.
   */
  async waitForTask(id: string, timeoutMs: number): Promise<TaskInfo> {
    const final = (t: TaskInfo) => t.status !== 'queued' && t.status !== 'running';
    const now = await this.getTask(id);
    if (final(now)) return now;
    return new Promise<TaskInfo>((resolve, reject) => {
      const onTask = (task: TaskInfo) => {
        if (task.id !== id || !final(task)) return;
        clearTimeout(timer);
        this.events.off('task', onTask);
        resolve(task);
      };
      const timer = setTimeout(() => {
        this.events.off('task', onTask);
        this.getTask(id).then(resolve, reject);
      }, timeoutMs);
      this.events.on('task', onTask);
      // It may have ended between the first read and the subscription.
      void this.getTask(id).then((task) => onTask(task), () => {});
    });
  }

  /** Records a firing that did not run (overlap, or missed while down): a run in state `skipped`. */
  async recordSkippedRun(job: string, firing: Date, reason: RunReason, detail: string, owner: string): Promise<RunInfo> {
    const id = randomUUID();
    await this.store.insertRun({ id, job, reason, status: 'skipped', owner, firing: firing.getTime(), vms: [], detail }, this.now().getTime());
    const run = (await this.store.getRun(id)) as RunInfo;
    this.events.emit('run', run);
    return run;
  }

  /** @throws CofferError E_TASK_NOT_FOUND. */
  async getTask(id: string): Promise<TaskInfo> {
    const task = await this.store.getTask(id);
    if (task === undefined) throw new CofferError('E_TASK_NOT_FOUND', `no task ${id}`);
    return task;
  }

  listTasks(filter: TaskFilter = {}): Promise<Page<TaskInfo>> {
    return this.store.listTasks(filter);
  }

  /** Tasks that ended in a window of end times, by end then id (the sweep of ended tasks; TaskStore.tasksEndedBetween). */
  tasksEndedBetween(window: EndedWindow, limit: number): Promise<TaskInfo[]> {
    return this.store.tasksEndedBetween(window, limit);
  }

  /** Runs that ended in a window of end times, by end then id. */
  runsEndedBetween(window: EndedWindow, limit: number): Promise<RunInfo[]> {
    return this.store.runsEndedBetween(window, limit);
  }

  /** How many tasks match the filter (for a list's total). */
  countTasks(filter: TaskFilter = {}): Promise<number> {
    return this.store.countTasks(filter);
  }

  /** How many runs match the filter. */
  countRuns(filter: { job?: string; status?: RunStatus } = {}): Promise<number> {
    return this.store.countRuns(filter);
  }

  /** A page of a task's log after line `after`. @throws CofferError E_TASK_NOT_FOUND. */
  async taskLog(id: string, options: { after?: number; limit?: number } = {}): Promise<Page<TaskLogLine>> {
    await this.getTask(id);
    return this.store.log(id, options);
  }

  /** @throws CofferError E_TASK_NOT_FOUND. */
  async getRun(id: string): Promise<RunInfo> {
    const run = await this.store.getRun(id);
    if (run === undefined) throw new CofferError('E_TASK_NOT_FOUND', `no run ${id}`);
    return run;
  }

  listRuns(filter: RunFilter = {}): Promise<Page<RunInfo>> {
    return this.store.listRuns(filter);
  }

  /** Runs for the runs list: the number of VMs, the names only with `names` (see TaskStore.listRunSummaries). */
  listRunSummaries(filter: RunFilter, names: boolean): Promise<Page<Omit<RunInfo, 'vms'> & { vmCount: number; vms?: string[] }>> {
    return this.store.listRunSummaries(filter, names);
  }

  /** Per run, how many of its VMs' tasks (the last attempt of each) are in each state. */
  taskOutcomes(runIds: readonly string[]): Promise<Map<string, Record<string, number>>> {
    return this.store.taskOutcomes(runIds);
  }

  /** The latest run of a job that ran (not a skipped firing). */
  lastRunOf(job: string): Promise<RunInfo | undefined> {
    return this.store.lastRunOf(job);
  }

  /** Whether a run of the job is in progress. */
  async jobRunning(job: string): Promise<boolean> {
    return (await this.store.runningRuns()).some((run) => run.job === job);
  }

  /** The VMs whose last attempt in the job's latest run failed (or was interrupted or not started before the window closed). */
  async failedVmsOf(job: string): Promise<string[]> {
    const last = await this.store.lastRunOf(job);
    if (last === undefined) return [];
    return latestAttempts(await this.store.tasksOfRun(last.id)).filter((t) => t.status === 'failed' || t.status === 'interrupted' || t.error_code === 'E_WINDOW_CLOSED').flatMap((t) => (t.vm === null ? [] : [t.vm]));
  }

  /**
   * Cancels a task: a queued one at once; a running one by message, then SIGTERM, then
   * SIGKILL (WorkerOptions). Its run's other tasks go on. Cancelled tasks are not retried.
   * @throws CofferError E_TASK_NOT_FOUND.
   */
  async cancelTask(id: string, by: string): Promise<TaskInfo> {
    const task = await this.getTask(id);
    const running = this.running.get(id);
    if (running !== undefined) {
      running.cancelRequested = true;
      await this.log(id, 'info', `cancel requested by ${by}`);
      running.handle.cancel();
    } else if (task.status === 'running') {
      // It runs in another process (a worker): its heartbeat sees the request.
      if (await this.store.requestCancel(id)) await this.log(id, 'info', `cancel requested by ${by} (the worker running it stops it at its next heartbeat)`);
    } else if (task.status === 'queued') {
      if (await this.store.finish(id, { status: 'cancelled', now: this.now().getTime(), error: { code: 'E_INTERRUPTED', message: `cancelled by ${by}` } })) {
        await this.log(id, 'info', `cancelled by ${by} before it started`);
        await this.changed(id);
        if (task.runId !== null) await this.checkRun(task.runId);
      }
    }
    return this.getTask(id);
  }

  /** Cancels every task of a run still queued or running. @throws CofferError E_TASK_NOT_FOUND. */
  async cancelRun(id: string, by: string): Promise<RunInfo> {
    await this.getRun(id);
    for (const row of await this.store.tasksOfRun(id)) if (row.status === 'queued' || row.status === 'running') await this.cancelTask(row.id, by);
    return this.getRun(id);
  }

  /**
   * History retention: forgets the runs that ended more than `keepMs` ago, with their tasks
   * and logs (the snapshots stay in their repositories). Returns how many runs were forgotten.
   */
  forgetHistory(keepMs: number): Promise<number> {
    return this.store.deleteHistory(this.now().getTime() - keepMs);
  }

  /** What the order and the forecast use per VM: last success, missed last window, last duration. */
  vmHistory(vms: readonly string[]): Promise<Map<string, { lastSuccess?: number; missedWindow: boolean; lastDurationMs?: number }>> {
    return this.store.vmStates(vms);
  }

  /**
   * The ids of the tasks whose workers run now, with their workers' process ids, the rates
   * they were sent, and the latency guard's read cap when one is in force (bytes per second).
   */
  runningWorkers(): { taskId: string; pid: number | undefined; rates: WorkerRates; readCap?: number }[] {
    return [...this.running].map(([taskId, r]) => ({ taskId, pid: r.handle.pid, rates: r.rates, ...(r.throttle?.cap === undefined ? {} : { readCap: r.throttle.cap }) }));
  }

  /**
   * Graceful shutdown: no new task starts; running ones may finish until `timeoutMs` minus a
   * cancel allowance (a quarter of it, at most 10 s), then are cancelled; whatever still runs at
   * the deadline is killed. Resolves when no worker is left. Queued tasks stay queued for the
   * next start.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.dispatching;
    const allEnded = () => Promise.all([...this.running.values()].map((r) => r.handle.ended));
    const allowance = Math.min(10_000, timeoutMs / 4);
    if (await settlesWithin(allEnded(), timeoutMs - allowance)) return;
    for (const [id, r] of this.running) {
      r.cancelRequested = true;
      await this.log(id, 'info', 'cancelled: the server is shutting down');
      r.handle.cancel();
    }
    if (await settlesWithin(allEnded(), allowance)) return;
    for (const r of this.running.values()) r.handle.kill();
    await allEnded();
    // Let the ends be recorded.
    await new Promise((resolve) => setImmediate(resolve));
    await Promise.all(this.endings);
  }

  private readonly endings = new Set<Promise<void>>();

  /** Stops dispatching and kills every worker at once (tests; a server stops with {@link drain}). */
  async close(): Promise<void> {
    this.draining = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    for (const r of this.running.values()) r.handle.kill();
    await Promise.all([...this.running.values()].map((r) => r.handle.ended));
    await Promise.all(this.endings);
  }

  // --- dispatch ---------------------------------------------------------------------------

  /** Runs a dispatch pass, or another one right after the current one if one is running. */
  dispatch(): Promise<void> {
    if (this.dispatching !== undefined) {
      this.again = true;
      return this.dispatching;
    }
    this.dispatching = (async () => {
      try {
        do {
          this.again = false;
          await this.dispatchOnce();
        } while (this.again && !this.draining);
      } catch (error) {
        this.report(error);
      } finally {
        this.dispatching = undefined;
      }
    })();
    return this.dispatching;
  }

  private async dispatchOnce(): Promise<void> {
    if (this.draining || this.options.dispatch === false) return;
    const now = this.now();
    this.rebalance(now);
    if (this.options.shared !== undefined) return this.takeShared(this.options.shared, now);
    const windowEnds = new Map<string, number>();
    for (const run of await this.store.runningRuns()) {
      if (run.windowEnd === null) continue;
      windowEnds.set(run.id, Date.parse(run.windowEnd));
      if (run.cancelAtWindowEnd && now.getTime() >= Date.parse(run.windowEnd)) await this.cancelAtWindowEnd(run.id);
    }
    const queuedRows = await this.store.tasksIn('queued');
    // Other kinds than backup start at once, outside the backups' limits (TaskRequest).
    for (const row of queuedRows) if (row.kind !== 'backup') await this.launch(row);
    const waiting = await this.holdOfflineAgents(queuedRows, windowEnds, now.getTime());
    const rows = new Map(queuedRows.filter((row) => row.kind === 'backup' && !waiting.has(row.id)).map((row) => [row.id, row]));
    if (rows.size === 0) return;
    const queued = [...rows.values()].map((row) => ({
      ...placementOf(row), runId: row.run_id, vm: row.vm, datastore: row.datastore, notBefore: row.not_before === null ? null : Number(row.not_before),
    }));
    const vmStates = await this.store.vmStates(queued.flatMap((t) => (t.vm === null ? [] : [t.vm])));
    const running = [...this.running.values()].filter((r) => r.kind === 'backup').map((r) => ({ ...r.placement, reading: r.reading, latencyMs: r.latencyMs }));
    const { start, windowClosed } = chooseStarts(queued, running, {
      now, limits: this.limits, windowEnds, vmStates, ...(this.guard === undefined ? {} : { latencyGuard: this.guard }),
    });
    for (const task of windowClosed) await this.endWindowClosed(rows.get(task.id) as Selectable<TaskTable>, now.getTime());
    for (const task of start) await this.launch(rows.get(task.id) as Selectable<TaskTable>);
  }

  /**
   * Backups whose agent is offline wait outside the limits (their host's slot stays free); one
   * whose window closed (or, without a window, whose wait ran out) fails with the agent's
   * reason, which its notification carries. Returns the ids of those still waiting.
   */
  private async holdOfflineAgents(queued: readonly Selectable<TaskTable>[], windowEnds: ReadonlyMap<string, number>, now: number): Promise<Set<string>> {
    const waiting = new Set<string>();
    const remote = this.options.remote;
    if (remote === undefined) return waiting;
    for (const row of queued) {
      if (row.kind !== 'backup') continue;
      const agent = remote.agentOf(JSON.parse(row.spec) as unknown);
      if (agent === undefined || remote.online(agent)) continue;
      waiting.add(row.id);
      const windowEnd = row.run_id === null ? undefined : windowEnds.get(row.run_id);
      const deadline = windowEnd ?? remote.waitDeadline(Number(row.created_at));
      if (now < deadline) continue;
      const error = remote.offlineError(agent);
      if (!(await this.store.finish(row.id, { status: 'failed', now, error }))) continue;
      await this.log(row.id, 'error', `not started: ${error.message}`);
      await this.changed(row.id);
      if (row.run_id !== null) await this.checkRun(row.run_id);
    }
    return waiting;
  }

  /** Scale-out: the shared queue chose (limits across every worker); start what it handed us. */
  private async takeShared(shared: SharedDispatch, now: Date): Promise<void> {
    const free = Math.max(0, shared.capacity - this.running.size);
    // No read before the hand-out: the queue's first statement says which runs stop at their window's end.
    const taken = await shared.take(free);
    for (const row of taken.windowClosed) await this.endWindowClosed(row, now.getTime());
    for (const runId of taken.endedRuns) await this.checkRun(runId);
    for (const row of taken.start) await this.launch(row, true);
    for (const run of taken.stopAtWindowEnd) {
      if (now.getTime() >= run.windowEnd) await this.cancelAtWindowEnd(run.id);
    }
  }

  /** Cancels a task this process runs, if it does (a worker's heartbeat saw a request). */
  cancelLocal(id: string, by: string): boolean {
    const running = this.running.get(id);
    if (running === undefined || running.cancelRequested) return false;
    running.cancelRequested = true;
    void this.log(id, 'info', `cancel requested by ${by}`).catch((error: unknown) => this.report(error));
    running.handle.cancel();
    return true;
  }

  /** Kills a task this process runs without recording its end (its lease was lost: another worker has it now). False if it runs no such task, or gave it up already. */
  abandon(id: string): boolean {
    const running = this.running.get(id);
    if (running === undefined || this.abandoned.has(running.handle)) return false;
    this.abandoned.add(running.handle);
    // Not ours any more: it no longer counts, holds a lease, or keeps a drain waiting.
    this.running.delete(id);
    running.handle.kill();
    this.rebalance(this.now());
    return true;
  }

  /** The runs given up (by their handle: a task taken back may be handed to this process again, as another attempt). */
  private readonly abandoned = new Set<WorkerHandle>();

  /** Tasks that ended here and whose end is being recorded (retried while the database is away). */
  private readonly recording = new Set<string>();

  /** The task ended here and its end is not recorded yet: killing it would change nothing (its backup is made); keep its lease. */
  endPending(id: string): boolean {
    return this.recording.has(id);
  }

  /** The run's window closed and its policy says stop: cancel its running backups (cleanly: message, then signals). */
  private async cancelAtWindowEnd(runId: string): Promise<void> {
    for (const [id, r] of this.running) {
      if (r.runId !== runId || r.cancelRequested) continue;
      r.cancelRequested = true;
      r.cancelReason = { code: 'E_WINDOW_CLOSED', message: 'cancelled: the job\'s backup window closed while it ran; it goes first next time' };
      const vm = (await this.store.taskRow(id))?.vm;
      if (vm !== null && vm !== undefined) await this.store.setMissedWindow(vm, true);
      await this.log(id, 'warning', 'cancelling: the backup window closed and the job\'s policy stops running backups');
      r.handle.cancel();
    }
  }

  private async endWindowClosed(row: Selectable<TaskTable>, now: number): Promise<void> {
    if (!(await this.store.finish(row.id, { status: 'cancelled', now, error: { code: 'E_WINDOW_CLOSED', message: 'the job\'s backup window closed before this VM\'s turn; it goes first next time' } }))) return;
    if (row.vm !== null) await this.store.setMissedWindow(row.vm, true);
    await this.log(row.id, 'warning', 'not started: the backup window closed before its turn; it goes first next time');
    await this.changed(row.id);
    if (row.run_id !== null) await this.checkRun(row.run_id);
  }

  private async launch(row: Selectable<TaskTable>, taken = false): Promise<void> {
    const startedAt = Date.now();
    if (!taken) await this.store.markRunning(row.id, startedAt);
    const kind = row.kind as TaskKind;
    const load = this.load();
    // Every rule is shared by the backups under it across the cluster when the shared queue knows them (docs/scale.md).
    const rates = kind !== 'backup' ? {} : this.bandwidth.scoped ? this.scopedShares(this.now(), { id: row.id, host: row.host ?? '', repository: row.repository ?? '', reading: true }).at(-1) ?? {} : this.bandwidth.shareAt(this.now(), load.reading + 1, load.running + 1);
    const spec = JSON.parse(row.spec) as unknown;
    const agent = kind === 'backup' ? this.options.remote?.agentOf(spec) : undefined;
    const listener: WorkerListener = {
      onProgress: ({ done, total, latencyMs, sourceBytesRead }) => {
        const entry = this.running.get(row.id);
        // Its datastore may start another backup now (the latency guard): dispatch once the report is written (a shared queue reads it from the database).
        let released = false;
        if (entry !== undefined && latencyMs !== undefined) {
          const guard = this.guard;
          const wasOver = entry.latencyMs === undefined || (guard !== undefined && entry.latencyMs > guard.thresholdMs);
          entry.latencyMs = latencyMs;
          released = guard !== undefined && wasOver && latencyMs <= guard.thresholdMs;
        }
        if (entry !== undefined && entry.reading && entry.throttle?.report(this.now().getTime(), sourceBytesRead, latencyMs, entry.share.sourceRead) === true) this.send(entry);
        if (entry !== undefined && entry.reading && done >= total) {
          entry.reading = false;
          entry.throttle?.release();
          this.rebalance(this.now());
        }
        // The reads go with the progress (fenced like it) for the other workers' latency guard.
        const reads = kind === 'backup' ? { latencyMs, done: done >= total } : undefined;
        // The database may be away for a moment (a restart): a lost progress update is reported, never fatal.
        void this.store.setProgress(row.id, total === 0 ? 0 : done / total, reads).then(() => this.changed(row.id)).catch((error: unknown) => this.report(error)).finally(() => {
          if (released) void this.dispatch();
        });
      },
      onLog: (level, line) => void this.log(row.id, level, line).catch((error: unknown) => this.report(error)),
      onReport: (report) => void this.store.setReport(row.id, report).then(() => this.changed(row.id)).catch((error: unknown) => this.report(error)),
    };
    const handle = agent !== undefined && this.options.remote !== undefined
      ? this.options.remote.start({ taskId: row.id, spec, repository: row.repository ?? '', rates }, listener)
      : startWorker({ taskId: row.id, kind, spec, rates }, listener, this.options.worker);
    // Only backups share the bandwidth rules (they read the hosts' storage).
    const throttle = kind === 'backup' && this.throttle !== undefined ? new ReadThrottle(this.throttle) : undefined;
    this.running.set(row.id, { kind, runId: row.run_id, handle, placement: placementOf(row), cancelRequested: false, reading: kind === 'backup', share: rates, throttle, rates, latencyMs: undefined });
    this.rebalance(this.now());
    // Its end is listened for whatever happens to the start's log line: with the database away
    // (a restart) that write fails, or waits for a connection up to its timeout, and the task,
    // which runs on, must still have its end recorded (its line first, if written within 1 s).
    const started = this.log(row.id, 'info', agent !== undefined ? `handed to agent ${agent} (attempt ${row.attempt})` : `started in worker process ${handle.pid ?? '?'} (attempt ${row.attempt})`)
      .then(() => this.changed(row.id)).catch((error: unknown) => this.report(error));
    const ending = handle.ended.then(async (outcome) => {
      await settlesWithin(started, 1000);
      await this.ended(row, handle, outcome);
    }).catch((error: unknown) => this.report(error));
    this.endings.add(ending);
    void ending.finally(() => this.endings.delete(ending));
    await started;
  }

  private async ended(row: Selectable<TaskTable>, handle: WorkerHandle, outcome: Awaited<WorkerHandle['ended']>): Promise<void> {
    const running = this.running.get(row.id);
    if (this.abandoned.delete(handle)) return;
    const now = Date.now();
    const end = taskEnd(outcome, running?.cancelRequested === true, running?.cancelReason);
    const result = outcome.kind === 'result' ? outcome.result : undefined;
    // Still listed as running until its end is recorded: a worker's heartbeat keeps its lease,
    // and, the database away, does not give the task up (heartbeat-loop.ts: endPending).
    this.recording.add(row.id);
    let recorded: boolean;
    try {
      recorded = await this.persist(() => this.store.finish(row.id, { status: end.status, now, ...(end.error ? { error: end.error } : {}), ...(result ? { result } : {}) }), () => this.abandoned.has(handle));
    } finally {
      this.recording.delete(row.id);
      if (!this.abandoned.delete(handle) && this.running.get(row.id)?.handle === handle) this.running.delete(row.id);
      this.rebalance(this.now());
    }
    if (!recorded && this.options.shared !== undefined) return; // a lost lease: another worker holds the task now
    // A shared queue: the slot is free in the database once the end is recorded; take the next
    // task first, then do the rest of the bookkeeping (not beside the hand-out: this process
    // would hold the cluster's dispatch lock longer; bench/workers.ts: the queue delay).
    if (this.options.shared !== undefined) await this.dispatch();
    const backup = row.kind === 'backup' && result !== undefined ? (result as VmBackupResult) : undefined;
    if (backup !== undefined && row.vm !== null) {
      this.finishedBytes += backup.bytesRead;
      await this.persist(() => this.store.recordVmSuccess(row.vm as string, now, backup.durationMs));
    }
    this.finishedTasks++;
    await this.persist(() => this.log(row.id, end.error === undefined ? 'info' : end.status === 'cancelled' ? 'info' : 'error',
      backup !== undefined ? `snapshot ${backup.snapshot} saved: read ${backup.bytesRead} bytes, ${backup.bytesNew} new, ${backup.mode}; bottleneck ${backup.bottleneck}`
        : result !== undefined ? (result as TaskReport).summary : `${end.status}: ${end.error?.message ?? ''}`));
    if (end.status === 'failed') await this.persist(() => this.retryIfAllowed(row, now));
    await this.persist(() => this.changed(row.id));
    const runId = row.run_id;
    if (runId !== null) await this.persist(() => this.checkRun(runId));
    // Here, a retry may have been queued; a process of its own chooses from the database again.
    if (this.options.shared === undefined || end.status === 'failed') void this.dispatch();
  }

  private async retryIfAllowed(row: Selectable<TaskTable>, now: number): Promise<void> {
    const at = retryAt(this.retry, Number(row.attempt), now);
    if (at === undefined || row.kind !== 'backup') return;
    const id = randomUUID();
    await this.store.insertTask({
      id, runId: row.run_id, kind: 'backup', owner: row.owner,
      ...(row.vm === null ? {} : { vm: row.vm }), ...(row.host === null ? {} : { host: row.host }),
      ...(row.datastore === null ? {} : { datastore: row.datastore }), ...(row.repository === null ? {} : { repository: row.repository }),
      ...(row.job === null ? {} : { job: row.job }),
      spec: JSON.parse(row.spec), attempt: Number(row.attempt) + 1, retryOf: row.id, notBefore: at,
    }, this.now().getTime());
    await this.log(row.id, 'info', `retry ${row.attempt} of this VM queued as task ${id}, not before ${new Date(at).toISOString()}`);
    await this.changed(id);
  }

  /** Ends the run if none of its latest attempts is queued or running. */
  private async checkRun(runId: string): Promise<void> {
    const latest = latestAttempts(await this.store.tasksOfRun(runId));
    if (latest.some((t) => t.status === 'queued' || t.status === 'running')) return;
    const end = runEnd(latest.map((t) => ({ status: t.status as TaskInfo['status'], errorCode: t.error_code })));
    if (await this.store.endRun(runId, end.status, end.detail, this.now().getTime())) {
      const run = await this.store.getRun(runId);
      if (run !== undefined) this.events.emit('run', run);
    }
  }

  /** Tasks this process ended, and the source bytes its backups read (a worker's figures). */
  finishedTasks = 0;
  finishedBytes = 0;

  /**
   * A write retried while the database is away, when a shared queue asks for it (up to its
   * `persistMs`; every second at most, so that the end is recorded soon after the database is
   * back). `given up`: the heartbeat learnt that another worker holds the task; false then.
   */
  private async persist<T>(write: () => Promise<T>): Promise<T>;
  private async persist(write: () => Promise<boolean>, givenUp: () => boolean): Promise<boolean>;
  private async persist<T>(write: () => Promise<T>, givenUp?: () => boolean): Promise<T | false> {
    const deadline = Date.now() + (this.options.shared?.persistMs ?? 0);
    for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
      try {
        return await write();
      } catch (error) {
        if (Date.now() + delay > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, delay));
        if (givenUp?.() === true) return false;
      }
    }
  }

  /** The tasks under the bandwidth rules: this process's, or across the cluster when the shared queue knows more. */
  private load(): { reading: number; running: number } {
    const all = [...this.running.values()];
    const local = { reading: all.filter((r) => r.reading).length, running: all.length };
    const cluster = this.options.shared?.load();
    return cluster === undefined ? local : { reading: Math.max(local.reading, cluster.reading), running: Math.max(local.running, cluster.running) };
  }

  /**
   * Sends each worker its share of the bandwidth rules, capped by its latency throttle, when it
   * changed (a heartbeat calls it when the cluster's count changed).
   */
  rebalance(now: Date = this.now()): void {
    const all = [...this.running.values()];
    if (this.bandwidth.scoped) {
      // Scoped rules: only backups share them (as at launch), each under the rule that covers it.
      const backups = all.filter((r) => r.kind === 'backup');
      const shares = this.scopedShares(now);
      for (const r of all) r.share = r.kind === 'backup' ? (shares[backups.indexOf(r)] ?? {}) : {};
    } else {
      const load = this.load();
      const share = this.bandwidth.shareAt(now, load.reading, load.running);
      for (const r of all) r.share = share;
    }
    for (const r of all) this.send(r);
  }

  /** Sends a worker its share capped by its throttle, if that is not what it has. */
  private send(r: Running): void {
    const rates = cappedRates(r.share, r.throttle?.cap);
    if (r.rates.sourceRead === rates.sourceRead && r.rates.repositoryWrite === rates.repositoryWrite) return;
    r.rates = rates;
    r.handle.setRates(rates);
  }

  /**
   * Scoped bandwidth rules: each running backup's share (in `running` order), then `extra`'s when
   * given (a task starting), last. The backups other processes run (the shared queue's, as of its
   * last hand-out or heartbeat) count under the rules too, as still reading (whether they are is
   * not known here).
   */
  private scopedShares(now: Date, extra?: BandwidthSubject & { id: string }): WorkerRates[] {
    const subjects: BandwidthSubject[] = [...this.running.values()].filter((r) => r.kind === 'backup').map((r) => ({ host: r.placement.host, repository: r.placement.repository, reading: r.reading }));
    const elsewhere = (this.options.shared?.load()?.backups ?? []).filter((b) => !this.running.has(b.id) && b.id !== extra?.id).map((b) => ({ host: b.host, repository: b.repository, reading: true }));
    return this.bandwidth.sharesAt(now, [...subjects, ...elsewhere, ...(extra === undefined ? [] : [extra])]);
  }

  /** An internal failure (the state database went away…): `error` listeners hear it; without one, a process warning. */
  private report(error: unknown): void {
    if (this.events.listenerCount('error') > 0) this.events.emit('error', error);
    else process.emitWarning(`coffer task runner: ${(error as Error).message}`);
  }

  private async log(taskId: string, level: TaskLogLine['level'], line: string): Promise<void> {
    const entry = await this.store.appendLog(taskId, level, line, Date.now());
    this.events.emit('log', { taskId, ...entry });
  }

  private async changed(taskId: string): Promise<void> {
    const task = await this.store.getTask(taskId);
    if (task !== undefined) this.events.emit('task', task);
  }
}

/**
 * The throttle's settings from the latency guard's, or undefined when it does not throttle.
 * @throws CofferError E_USAGE for a bad threshold or floor.
 */
function throttleOptions(guard: LatencyGuard | undefined): ReadThrottleOptions | undefined {
  if (guard === undefined) return undefined;
  if (!(guard.thresholdMs >= 0) || !Number.isFinite(guard.thresholdMs)) throw new CofferError('E_USAGE', `latency guard: thresholdMs must be a number of milliseconds, 0 or more, not ${guard.thresholdMs}`);
  const floor = guard.minBytesPerSecond ?? DEFAULT_MIN_THROTTLE_RATE;
  if (!(floor >= 1024) || !Number.isFinite(floor)) throw new CofferError('E_USAGE', `latency guard: give minBytesPerSecond at least 1024 bytes per second, not ${floor}`);
  return guard.throttle === false ? undefined : { thresholdMs: guard.thresholdMs, minBytesPerSecond: floor };
}

/** A task's keys for the limits (on-demand tasks without a job count under the job `''`). */
function placementOf(row: Selectable<TaskTable>): { id: string; host: string; datastore?: string; repository: string; job: string } {
  return { id: row.id, host: row.host ?? '', ...(row.datastore === null ? {} : { datastore: row.datastore }), repository: row.repository ?? '', job: row.job ?? '' };
}

/** The tasks no retry supersedes: each VM's latest attempt. */
function latestAttempts(rows: readonly Selectable<TaskTable>[]): Selectable<TaskTable>[] {
  const superseded = new Set(rows.flatMap((r) => (r.retry_of === null ? [] : [r.retry_of])));
  return rows.filter((r) => !superseded.has(r.id));
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, ms))));
  const done = await Promise.race([promise.then(() => true), timeout]);
  clearTimeout(timer);
  return done;
}
