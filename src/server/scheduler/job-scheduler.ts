/**
 * The scheduler: fires the runs of scheduled jobs per jobs' `decideRun` (no overlap, one
 * catch-up run at start with repeat-missed, no catch-up after an edit), keeps each job's
 * schedule state in the state database, starts jobs that run after another one, and starts
 * on-demand runs (a job, one VM of it, or just the VMs that failed last time).
 *
 * The clock is injected; {@link JobScheduler.tick} is what a timer calls (tests call it with
 * their own clock). A firing's state is stored before its run starts: a crash in between loses
 * that firing rather than running it twice.
 */
import { EventEmitter } from 'node:events';
import type { Kysely } from 'kysely';
import { CofferError } from '../../errors/index.js';
import { decideRun, forecastRun, parseSchedule, scheduleEdited, type ConcurrencyLimits, type Forecast, type PendingTask, type Schedule, type ScheduleState } from '../../jobs/index.js';
import type { StateSchema } from '../state/schema.js';
import type { RunInfo, RunReason, TaskRunner, VmTarget } from '../tasks/index.js';

/** A job as the scheduler needs it; the service's configuration supplies it. */
export interface ScheduledJob {
  readonly name: string;
  /** A calendar event or cron expression; none: the job runs only on demand or after another. */
  readonly schedule?: string;
  /** The schedule's time zone (default UTC). */
  readonly timeZone?: string;
  /** Run once at start for firings missed while the server was down. */
  readonly repeatMissed?: boolean;
  /** The backup window, `HH:MM-HH:MM` in the job's zone: no VM starts after its end (the next end after the firing). */
  readonly window?: string;
  /** Or: the window closes this long after the run starts. */
  readonly windowMs?: number;
  /** Cancel (cleanly) the backups still running when the window closes; by default they finish. */
  readonly cancelAtWindowEnd?: boolean;
  /** At most this many of the job's VMs at once (the per-job limit). */
  readonly concurrency?: number;
  /** Run when a run of this job ends (whatever its outcome). */
  readonly after?: string;
  /** The VMs, resolved when a run starts (selection by name, glob, tag or host is the caller's). */
  resolveVms(): Promise<VmTarget[]>;
}

/** Options of {@link JobScheduler}. */
export interface SchedulerOptions {
  now?: () => Date;
  /** When this scheduler started watching (default: `now()` at construction); earlier firings were missed while down. */
  upSince?: Date;
  /** Limits besides the per-job ones (global, host, datastore, repository). */
  limits?: ConcurrencyLimits;
  /** The owner recorded for scheduled runs (default `scheduler`). */
  owner?: string;
  /**
   * Several servers on one database (#10): claims a firing before acting on it; a firing
   * another server claimed is passed by (its state still settles here). Without it (one
   * server), every firing is this server's.
   */
  claimFiring?: (job: string, firing: Date) => Promise<boolean>;
}

/**
 * Events: `fired` (RunInfo) when a schedule (or an `after` chain) starts a run, `skipped`
 * (RunInfo) when a firing is skipped (overlap), dropped (missed while down) or its VMs cannot
 * be resolved, `error` (Error) for a failure outside any request (the database went away).
 */
export class JobScheduler {
  readonly events = new EventEmitter();
  private jobs = new Map<string, { job: ScheduledJob; schedule: Schedule | undefined }>();
  private readonly now: () => Date;
  private readonly upSince: Date;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;

  constructor(private readonly db: Kysely<StateSchema>, private readonly runner: TaskRunner, jobs: readonly ScheduledJob[], private readonly options: SchedulerOptions = {}) {
    this.now = options.now ?? (() => new Date());
    this.upSince = options.upSince ?? this.now();
    this.setJobs(jobs);
    runner.events.on('run', (run: RunInfo) => void this.onRunChanged(run).catch((error: unknown) => this.report(error)));
  }

  /**
   * Replaces the jobs (a configuration edit). A job whose schedule text changed counts from the
   * next tick as edited then: no catch-up run.
   * @throws CofferError E_USAGE for a schedule that does not parse or a duplicate name.
   */
  setJobs(jobs: readonly ScheduledJob[]): void {
    const next = new Map<string, { job: ScheduledJob; schedule: Schedule | undefined }>();
    for (const job of jobs) {
      if (next.has(job.name)) throw new CofferError('E_USAGE', `two jobs are named ${job.name}`);
      const schedule = job.schedule === undefined ? undefined : parseSchedule(job.schedule, { timeZone: job.timeZone ?? 'UTC' });
      next.set(job.name, { job, schedule });
    }
    this.jobs = next;
    const overrides: Record<string, number> = {};
    for (const { job } of next.values()) if (job.concurrency !== undefined) overrides[job.name] = job.concurrency;
    const base = this.options.limits ?? {};
    this.runner.setLimits({ ...base, job: { ...base.job, overrides: { ...base.job?.overrides, ...overrides } } });
  }

  /** Ticks every `intervalMs` (default 1 s) until {@link stop}. */
  start(intervalMs = 1000): void {
    this.timer ??= setInterval(() => void this.tick().catch((error: unknown) => this.report(error)), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking;
  }

  /** Decides every scheduled job once, now. One tick at a time. */
  tick(): Promise<void> {
    this.ticking ??= (async () => {
      try {
        for (const { job, schedule } of this.jobs.values()) if (schedule !== undefined) await this.tickJob(job, schedule);
      } finally {
        this.ticking = undefined;
      }
    })();
    return this.ticking;
  }

  /** Starts a run of the whole job now. @throws CofferError E_USAGE for an unknown job. */
  async runJob(name: string, owner: string): Promise<RunInfo> {
    const job = this.job(name);
    return this.startRun(job, 'on-demand', owner, await job.resolveVms());
  }

  /** Starts a run of one VM of a job now. @throws CofferError E_USAGE for an unknown job or a VM the job does not cover. */
  async runVm(name: string, vm: string, owner: string): Promise<RunInfo> {
    const job = this.job(name);
    const target = (await job.resolveVms()).find((t) => t.vm === vm);
    if (target === undefined) throw new CofferError('E_USAGE', `job ${name} does not cover VM ${vm}`);
    return this.startRun(job, 'vm', owner, [target]);
  }

  /** Starts a run of just the VMs that failed in the job's last run. @throws CofferError E_USAGE when none failed. */
  async runFailedAgain(name: string, owner: string): Promise<RunInfo> {
    const job = this.job(name);
    const failed = new Set(await this.runner.failedVmsOf(name));
    if (failed.size === 0) throw new CofferError('E_USAGE', `no VM failed in the last run of job ${name}`);
    return this.startRun(job, 'failed-again', owner, (await job.resolveVms()).filter((t) => failed.has(t.vm)));
  }

  /**
   * Will the job's next scheduled run fit its window? Replays the planner with each VM's last
   * backup duration (`defaultDurationMs` for a VM without one) from the next firing after
   * `after` (default now), under the limits, as if nothing else ran.
   * @throws CofferError E_USAGE for an unknown job or one without a schedule that fires again.
   */
  async forecast(name: string, options: { after?: Date; defaultDurationMs: number }): Promise<{ firing: Date; windowEnd?: Date; forecast: Forecast<PendingTask & { vm: string }> }> {
    const entry = this.jobs.get(name);
    if (entry === undefined) throw new CofferError('E_USAGE', `no job named ${name}`);
    const firing = entry.schedule?.next(options.after ?? this.now());
    if (firing === undefined) throw new CofferError('E_USAGE', `job ${name} has no scheduled run ahead`);
    const targets = await entry.job.resolveVms();
    const history = await this.runner.vmHistory(targets.map((t) => t.vm));
    const pending = targets.map((t, i) => {
      const h = history.get(t.vm);
      return {
        id: `${i}`, vm: t.vm, host: t.host, repository: t.repository.name, job: name, ...(t.datastore === undefined ? {} : { datastore: t.datastore }),
        ...(h?.lastSuccess === undefined ? {} : { lastSuccess: new Date(h.lastSuccess) }),
        ...(h?.missedWindow === true ? { missedLastWindow: true } : {}),
        ...(h?.lastDurationMs === undefined ? {} : { expectedDurationMs: h.lastDurationMs }),
      };
    });
    const windowEnd = this.windowEnd(entry.job, firing);
    const forecast = forecastRun(pending, { limits: this.runner.limitsNow(), start: firing, defaultDurationMs: options.defaultDurationMs, ...(windowEnd === undefined ? {} : { windowEnds: { [name]: windowEnd } }) });
    return { firing, ...(windowEnd === undefined ? {} : { windowEnd }), forecast };
  }

  /** A job's stored schedule state, if it has one. */
  async scheduleState(name: string): Promise<{ settledUntil: Date; lastFired?: Date; lastRunId?: string } | undefined> {
    const row = await this.db.selectFrom('schedule_state').selectAll().where('job', '=', name).executeTakeFirst();
    if (row === undefined) return undefined;
    return { settledUntil: new Date(Number(row.settled_until)), ...(row.last_fired === null ? {} : { lastFired: new Date(Number(row.last_fired)) }), ...(row.last_run_id === null ? {} : { lastRunId: row.last_run_id }) };
  }

  /** A failure outside any caller's request: `error` listeners hear it; without one, a process warning. */
  private report(error: unknown): void {
    if (this.events.listenerCount('error') > 0) this.events.emit('error', error);
    else process.emitWarning(`coffer scheduler: ${(error as Error).message}`);
  }

  private job(name: string): ScheduledJob {
    const entry = this.jobs.get(name);
    if (entry === undefined) throw new CofferError('E_USAGE', `no job named ${name}`);
    return entry.job;
  }

  private async tickJob(job: ScheduledJob, schedule: Schedule): Promise<void> {
    const now = this.now();
    // JSON, not a NUL separator: PostgreSQL text cannot hold NUL bytes.
    const key = JSON.stringify([schedule.text, schedule.timeZone]);
    const row = await this.db.selectFrom('schedule_state').selectAll().where('job', '=', job.name).executeTakeFirst();
    let state: ScheduleState = row === undefined ? scheduleEdited(now) : { settledUntil: new Date(Number(row.settled_until)) };
    if (row !== undefined && row.schedule !== key) state = scheduleEdited(now, state);
    const decision = decideRun(schedule, state, { now, upSince: this.upSince, running: await this.runner.jobRunning(job.name), repeatMissed: job.repeatMissed === true });
    const fired = decision.action === 'wait' ? (row?.last_fired ?? null) : decision.firing.getTime();
    if (decision.action !== 'wait' && this.options.claimFiring !== undefined && !(await this.options.claimFiring(job.name, decision.firing))) {
      // Another server acted on this firing and saves the job's state; the next tick reads it.
      return;
    }
    await this.saveState(job.name, key, decision.state, fired, row?.last_run_id ?? null);
    const owner = this.options.owner ?? 'scheduler';
    if (decision.action === 'start') {
      let vms: VmTarget[];
      try {
        vms = await job.resolveVms();
      } catch (error) {
        const run = await this.runner.recordSkippedRun(job.name, decision.firing, decision.missed ? 'missed' : 'schedule', `the job's VMs could not be resolved: ${(error as Error).message}`, owner);
        this.events.emit('skipped', run);
        return;
      }
      const run = await this.startRun(job, decision.missed ? 'missed' : 'schedule', owner, vms, decision.firing);
      await this.saveState(job.name, key, decision.state, fired, run.id);
      this.events.emit('fired', run);
    } else if (decision.action === 'skip-overlap') {
      this.events.emit('skipped', await this.runner.recordSkippedRun(job.name, decision.firing, 'schedule', `skipped: the previous run of ${job.name} was still going (${decision.count} firing${decision.count === 1 ? '' : 's'})`, owner));
    } else if (decision.action === 'drop-missed') {
      this.events.emit('skipped', await this.runner.recordSkippedRun(job.name, decision.firing, 'missed', `missed while the server was down (${decision.count} firing${decision.count === 1 ? '' : 's'}); repeat-missed is off`, owner));
    }
  }

  private async saveState(job: string, schedule: string, state: ScheduleState, lastFired: number | null, lastRunId: string | null): Promise<void> {
    const values = { schedule, settled_until: state.settledUntil.getTime(), last_fired: lastFired, last_run_id: lastRunId };
    await this.db.insertInto('schedule_state').values({ job, ...values }).onConflict((c) => c.column('job').doUpdateSet(values)).execute();
  }

  private startRun(job: ScheduledJob, reason: RunReason, owner: string, vms: readonly VmTarget[], firing?: Date): Promise<RunInfo> {
    const windowEnd = this.windowEnd(job, firing ?? this.now());
    const windowed = windowEnd !== undefined && (reason === 'schedule' || reason === 'missed');
    return this.runner.startRun({
      job: job.name, reason, owner, vms, ...(firing === undefined ? {} : { firing }),
      ...(windowed ? { windowEnd, ...(job.cancelAtWindowEnd === true ? { cancelAtWindowEnd: true } : {}) } : {}),
    });
  }

  /** When a run starting at `from` must stop starting VMs. */
  private windowEnd(job: ScheduledJob, from: Date): Date | undefined {
    if (job.windowMs !== undefined) return new Date(from.getTime() + job.windowMs);
    if (job.window === undefined) return undefined;
    const match = /^(\d{1,2}:\d{2})-(\d{1,2}:\d{2})$/.exec(job.window.trim());
    if (match === null) throw new CofferError('E_USAGE', `job ${job.name}: window ${JSON.stringify(job.window)} is not HH:MM-HH:MM`);
    return parseSchedule(`*-*-* ${match[2] as string}`, { timeZone: job.timeZone ?? 'UTC' }).next(from);
  }

  /** A run ended: start the jobs that run after it. */
  private async onRunChanged(run: RunInfo): Promise<void> {
    if (run.job === null || run.status === 'running' || run.status === 'skipped') return;
    for (const { job } of this.jobs.values()) {
      if (job.after !== run.job) continue;
      // Several servers hear the same run end: one of them starts the next job.
      if (this.options.claimFiring !== undefined && !(await this.options.claimFiring(`${job.name} after run ${run.id}`, new Date(Date.parse(run.ended ?? run.created))))) continue;
      if (await this.runner.jobRunning(job.name)) {
        this.events.emit('skipped', await this.runner.recordSkippedRun(job.name, this.now(), `after:${run.job}`, `skipped: the previous run of ${job.name} was still going when ${run.job} ended`, this.options.owner ?? 'scheduler'));
        continue;
      }
      const started = await this.startRun(job, `after:${run.job}`, this.options.owner ?? 'scheduler', await job.resolveVms());
      this.events.emit('fired', started);
    }
  }
}
