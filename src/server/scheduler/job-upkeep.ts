/**
 * What a job declares besides its backups, carried out: its retention policy after each run,
 * and its verify, test-restore and prune schedules. Everything is started as a task of the
 * runner (worker/kinds/), like the API's actions, so it shows in the task list with its log.
 *
 * | trigger                                  | task(s)                                                    |
 * |------------------------------------------|------------------------------------------------------------|
 * | a run of the job ends (not a skipped one) | `forget` by the job's policy in its repository, its VMs only |
 * |   … with four-eyes on                     | a dry-run `forget` first; if it would remove snapshots, an approval request for the real one (nothing is removed until a second administrator approves) |
 * |   … the N-th forget (`prune-after-forgets`) | that forget prunes afterwards                             |
 * | `retention.prune-schedule` fires          | `prune` of the job's repository                            |
 * | `verify.schedule` fires                   | `verify` of the job's repository (`read-data-subset`: reads that share back) |
 * | `test-restore.schedule` fires             | `test-restore` of each VM's newest snapshot in the repository |
 *
 * Schedules follow the jobs' semantics: with a {@link UpkeepScheduleStore} (the server's), each
 * chore's settled instant is kept in the state database, and firings missed while the server
 * was down run once at the next start (not once per missed firing); without one they are
 * counted from the moment this process started. An edited schedule counts from the edit (no
 * catch-up), and a firing while the previous one's tasks still run is skipped. The forget count lives in memory:
 * a restart starts counting again. The clock is injected; {@link JobUpkeep.tick} is what the
 * timer calls.
 */
import { EventEmitter } from 'node:events';
import { CofferError } from '../../errors/index.js';
import { decideRun, parseSchedule, type Schedule, type ScheduleState } from '../../jobs/index.js';
import type { RetentionPolicy } from '../../repo/index.js';
import type { RunInfo, TaskInfo, TaskRequest } from '../tasks/index.js';
import type { UpkeepScheduleStore } from './upkeep-schedule-store.js';

/** A configured repository as a task's spec names it (worker/kinds/kind-specs.ts). */
export interface UpkeepRepository {
  readonly name: string;
  readonly url: string;
  readonly passphraseFile?: string;
}

/** A job's upkeep, from the configuration. */
export interface UpkeepJob {
  readonly name: string;
  readonly repository: UpkeepRepository;
  /** The time zone of the schedules below (default UTC). */
  readonly timeZone?: string;
  readonly retention?: {
    readonly policy: RetentionPolicy;
    /** Prune the repository when this calendar event fires. */
    readonly pruneSchedule?: string;
    /** Or: every N-th forget of this job prunes afterwards. */
    readonly pruneAfterForgets?: number;
  };
  readonly verify?: { readonly schedule: string; readonly subset?: string };
  /** `boot`: also boot each VM from its backup (the test-restore task's boot check). */
  readonly testRestore?: { readonly schedule: string; readonly boot?: { readonly expect?: string; readonly timeoutMs?: number; readonly accel?: 'kvm' | 'tcg' | 'auto' } };
  /** The job's VMs now (their names). */
  vms(): Promise<string[]>;
}

/** What the upkeep asks of the runner (the TaskRunner). */
export interface UpkeepRunner {
  readonly events: EventEmitter;
  submitTask(request: TaskRequest): Promise<TaskInfo>;
  waitForTask(id: string, timeoutMs: number): Promise<TaskInfo>;
}

export interface UpkeepOptions {
  now?: () => Date;
  /** The owner of the tasks it starts (default `scheduler`). */
  owner?: string;
  /** Whether destructive operations wait for a second administrator now (`security.four-eyes`). */
  fourEyes(): boolean;
  /** Asks for a second administrator's approval of `operation` (the API's approvals, as `POST /repositories/R/forget` does). */
  requestApproval(operation: 'repository.forget', args: Record<string, unknown>, summary: string, requester: string): Promise<unknown>;
  /** The id of a VM's newest snapshot in a repository, or undefined when it has none. */
  latestSnapshot(repository: string, vm: string): Promise<string | undefined>;
  /** How long a dry-run forget may take before the retention of that run is given up (default 10 min). */
  dryRunTimeoutMs?: number;
  /** Where the schedules' states are kept across restarts (without it: counted from this start, missed firings dropped). */
  store?: UpkeepScheduleStore;
}

type Chore = 'verify' | 'test-restore' | 'prune';

/** Prune waits this long for running backups to end (as the API's default). */
const PRUNE_WAIT_MS = 30 * 60_000;

/**
 * Events: `started` (TaskInfo) for each task it starts, `approval` ({ job, vm, removes }) when a
 * forget waits for four eyes, `skipped` ({ chore, firing }) for a firing while the previous one's
 * tasks still ran, `error` (Error) for a failure outside any request.
 */
export class JobUpkeep {
  readonly events = new EventEmitter();
  private jobs = new Map<string, { job: UpkeepJob; schedules: Map<Chore, Schedule> }>();
  private readonly states = new Map<string, { text: string; state: ScheduleState }>();
  /** Chore key → the ids of its tasks still queued or running. */
  private readonly active = new Map<string, Set<string>>();
  /** Tasks seen ending lately (one may end before {@link submit} files it as active). */
  private readonly ended = new Set<string>();
  private readonly forgets = new Map<string, number>();
  private readonly now: () => Date;
  private readonly upSince: Date;
  private readonly pending = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private loaded = false;

  constructor(private readonly runner: UpkeepRunner, jobs: readonly UpkeepJob[], private readonly options: UpkeepOptions) {
    this.now = options.now ?? (() => new Date());
    this.upSince = this.now();
    this.setJobs(jobs);
    runner.events.on('run', (run: RunInfo) => this.onRun(run));
    runner.events.on('task', (task: TaskInfo) => {
      if (task.status === 'queued' || task.status === 'running') return;
      this.ended.add(task.id);
      if (this.ended.size > 1000) this.ended.delete(this.ended.values().next().value as string);
      for (const ids of this.active.values()) ids.delete(task.id);
    });
  }

  /** Replaces the jobs (a configuration edit); an edited schedule counts from now. @throws CofferError E_USAGE for a schedule that does not parse. */
  setJobs(jobs: readonly UpkeepJob[]): void {
    const next = new Map<string, { job: UpkeepJob; schedules: Map<Chore, Schedule> }>();
    for (const job of jobs) {
      const schedules = new Map<Chore, Schedule>();
      const add = (chore: Chore, text: string | undefined) => {
        if (text === undefined) return;
        try {
          schedules.set(chore, parseSchedule(text, { timeZone: job.timeZone ?? 'UTC' }));
        } catch (cause) {
          throw new CofferError('E_USAGE', `job ${job.name}: ${chore} schedule ${JSON.stringify(text)}: ${(cause as Error).message}`, { cause });
        }
      };
      add('verify', job.verify?.schedule);
      add('test-restore', job.testRestore?.schedule);
      add('prune', job.retention?.pruneSchedule);
      next.set(job.name, { job, schedules });
    }
    this.jobs = next;
  }

  /** Ticks every `intervalMs` (default 1 s) until {@link stop}. */
  start(intervalMs = 1000): void {
    this.timer ??= setInterval(() => void this.tick().catch((error: unknown) => this.report(error)), intervalMs);
    this.timer.unref();
  }

  /** Stops ticking and waits for what was being started (a dry run's wait ends at its deadline). */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking;
    await Promise.allSettled([...this.pending]);
  }

  /** Decides every schedule once, now. One tick at a time. */
  tick(): Promise<void> {
    this.ticking ??= (async () => {
      // Yield first: a tick with nothing due would otherwise end before `ticking` is assigned, and stay assigned.
      await Promise.resolve();
      try {
        await this.loadStates();
        const now = this.now();
        for (const { job, schedules } of this.jobs.values()) {
          for (const [chore, schedule] of schedules) {
            try {
              if (await this.due(`${job.name}/${chore}`, schedule, now)) await this.startChore(job, chore);
            } catch (error) {
              this.report(error);
            }
          }
        }
      } finally {
        this.ticking = undefined;
      }
    })();
    return this.ticking;
  }

  /** Resolves once the retention work started by ended runs has been handed over (tests, stop). */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /** The states kept in the store, once (a state already decided in this process wins). */
  private async loadStates(): Promise<void> {
    if (this.loaded || this.options.store === undefined) return;
    for (const [key, stored] of await this.options.store.load()) {
      if (!this.states.has(key)) this.states.set(key, { text: stored.schedule, state: { settledUntil: stored.settledUntil } });
    }
    this.loaded = true;
  }

  /** Whether a chore's schedule fired since it was last settled, and nothing of it still runs. */
  private async due(key: string, schedule: Schedule, now: Date): Promise<boolean> {
    const known = this.states.get(key);
    const state = known === undefined || known.text !== schedule.text ? { settledUntil: now > this.upSince ? now : this.upSince } : known.state;
    // Kept across restarts: what was missed while down runs once now (the jobs' repeat-missed).
    const decision = decideRun(schedule, state, { now, upSince: this.upSince, running: (this.active.get(key)?.size ?? 0) > 0, repeatMissed: this.options.store !== undefined });
    this.states.set(key, { text: schedule.text, state: decision.state });
    if (this.options.store !== undefined && (known?.text !== schedule.text || known.state.settledUntil.getTime() !== decision.state.settledUntil.getTime())) {
      await this.options.store.save(key, { schedule: schedule.text, settledUntil: decision.state.settledUntil }, decision.action === 'start' ? decision.firing : undefined);
    }
    if (decision.action === 'skip-overlap') this.events.emit('skipped', { chore: key, firing: decision.firing });
    return decision.action === 'start';
  }

  private async startChore(job: UpkeepJob, chore: Chore): Promise<void> {
    const repository = job.repository;
    if (chore === 'verify') {
      const subset = job.verify?.subset;
      await this.submit(`${job.name}/verify`, { kind: 'verify', owner: this.owner, repository: repository.name, spec: { repository, readData: subset !== undefined, ...(subset === undefined ? {} : { subset }) } });
    } else if (chore === 'prune') {
      await this.submit(`${job.name}/prune`, { kind: 'prune', owner: this.owner, repository: repository.name, spec: { repository, dryRun: false, waitMs: PRUNE_WAIT_MS } });
    } else {
      for (const vm of await job.vms()) {
        const snapshot = await this.options.latestSnapshot(repository.name, vm);
        if (snapshot === undefined) continue;
        const boot = job.testRestore?.boot;
        await this.submit(`${job.name}/test-restore`, { kind: 'test-restore', owner: this.owner, repository: repository.name, vm, spec: { repository, snapshot, fsck: true, ...(boot === undefined ? {} : { boot }) } });
      }
    }
  }

  private onRun(run: RunInfo): void {
    if (run.job === null || run.status === 'running' || run.status === 'skipped') return;
    const entry = this.jobs.get(run.job);
    if (entry?.job.retention === undefined) return;
    const work = this.applyRetention(entry.job).catch((error: unknown) => this.report(error));
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
  }

  /** Forget by the job's policy, for each of its VMs (a VM another job also writes is left to that job's policy). */
  private async applyRetention(job: UpkeepJob): Promise<void> {
    const retention = job.retention as NonNullable<UpkeepJob['retention']>;
    const repository = job.repository;
    const vms = await job.vms();
    const count = (this.forgets.get(job.name) ?? 0) + 1;
    const prune = retention.pruneAfterForgets !== undefined && count >= retention.pruneAfterForgets;
    const specs = vms.map((vm) => ({ vm, spec: { repository, policy: retention.policy, vm, dryRun: false, prune: false } }));
    // One prune at the end, after every VM's forget: on the last one.
    if (prune && specs.length > 0) (specs[specs.length - 1] as { spec: { prune: boolean } }).spec.prune = true;
    for (const { vm, spec } of specs) {
      if (!this.options.fourEyes()) {
        await this.submit(`${job.name}/forget`, { kind: 'forget', owner: this.owner, repository: repository.name, vm, spec });
        continue;
      }
      const dry = await this.submit(`${job.name}/forget`, { kind: 'forget', owner: this.owner, repository: repository.name, vm, spec: { ...spec, dryRun: true, prune: false } });
      const ended = await this.runner.waitForTask(dry.id, this.options.dryRunTimeoutMs ?? 600_000);
      if (ended.status !== 'succeeded') throw new CofferError('E_USAGE', `job ${job.name}: the retention dry run for VM ${vm} ended ${ended.status}${ended.error === null ? '' : ` (${ended.error.message})`}; nothing was removed`);
      const removes = Number(ended.report?.figures?.['removed'] ?? 0);
      if (removes === 0) continue;
      await this.options.requestApproval('repository.forget', { repository: repository.name, owner: this.owner, spec }, `retention of job ${job.name}: remove ${removes} snapshot(s) of VM ${vm} in repository ${repository.name}${spec.prune ? ', then prune' : ''}`, this.owner);
      this.events.emit('approval', { job: job.name, vm, removes });
    }
    this.forgets.set(job.name, prune ? 0 : count);
  }

  private async submit(key: string, request: TaskRequest): Promise<TaskInfo> {
    const task = await this.runner.submitTask(request);
    if ((task.status === 'queued' || task.status === 'running') && !this.ended.has(task.id)) {
      const ids = this.active.get(key) ?? new Set<string>();
      ids.add(task.id);
      this.active.set(key, ids);
    }
    this.events.emit('started', task);
    return task;
  }

  private get owner(): string {
    return this.options.owner ?? 'scheduler';
  }

  private report(error: unknown): void {
    if (this.events.listenerCount('error') > 0) this.events.emit('error', error);
    else process.emitWarning(`coffer job upkeep: ${(error as Error).message}`);
  }
}
