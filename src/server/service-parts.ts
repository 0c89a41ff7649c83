/**
 * The working parts of `coffer server`, assembled from the configuration: the task runner
 * (limits, bandwidth rules and retries from `limits` and `tasks`), the scheduler (the jobs,
 * their VMs resolved from the inventory when a run starts), the notifier (`notifications`),
 * the bridge from the first two to the third, the jobs' upkeep (retention after each run,
 * verify, test-restore and prune schedules), the health checks (RPO missed, disk space low:
 * `health`), and `/metrics` (`metrics`).
 *
 * A change of the configuration through the API reaches them at once: new limits and
 * bandwidth rules, the jobs replaced (an edited schedule fires no catch-up run), the notifier
 * reconfigured. {@link ServiceParts.drain} is the graceful stop: the scheduler stops firing,
 * the runner drains (running backups finish or are cancelled within the time left), pending
 * notifications are handed over, the notifier closes.
 */
import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { CofferError } from '../errors/index.js';
import { parseDuration, type ConfigStore, type ServiceConfig } from './config/index.js';
import { HealthWatch, localRepositoryPath, parseMinFree, type SpaceLocation } from './health/index.js';
import { coverageReport, type RepositoryCatalog } from './inventory/index.js';
import { CofferMetrics, registerMetricsRoute } from './metrics/index.js';
import { Notifier, parseNotificationConfig } from './notify/index.js';
import { JobScheduler, JobUpkeep, UpkeepScheduleStore, type UpkeepOptions } from './scheduler/index.js';
import { bandwidthRules, concurrencyLimits, latencyGuard, historyMs, retryPolicy, scheduledJobs, syncDestinations, upkeepJobs } from './service-config.js';
import { EventSweep } from './event-sweep.js';
import { bridgeEvents } from './service-events.js';
import { claimFiring, gatedEvents, wakeOnQueueChanges, LeaderLease, listenForEvents, publishPolicy, relayEvents, startHeartbeats, PostgresTaskQueue, WorkerRegistry, DEFAULT_LEASE_MS, UPKEEP_ROLE } from './cluster/index.js';
import type { StateSchema } from './state/index.js';
import { TaskRunner, type TaskInfo, type TaskRunnerOptions } from './tasks/index.js';

/** What the routes use: the runner and the scheduler. */
export interface WorkServices {
  readonly runner: TaskRunner;
  readonly scheduler: JobScheduler;
}

export interface ServiceParts extends WorkServices {
  readonly notifier: Notifier;
  /** Retention after each run, and the jobs' verify, test-restore and prune schedules. */
  readonly upkeep: JobUpkeep;
  /** RPO and free-space checks (`health`). */
  readonly health: HealthWatch;
  /** The tasks the previous process left running, marked interrupted at this start. */
  readonly interrupted: TaskInfo[];
  /** `/metrics` as a route group when the configuration turns it on (its token file read now). */
  metricsRoutes(): Promise<((app: FastifyInstance) => void) | undefined>;
  /** Starts the scheduler's clock (after the server listens). */
  startScheduling(): void;
  /** Graceful stop within `timeLeftMs`. */
  drain(timeLeftMs: number): Promise<void>;
}

export interface ServicePartsOptions {
  db: Kysely<StateSchema>;
  config: ConfigStore;
  catalog: RepositoryCatalog;
  print: (line: string) => void;
  logError: (error: unknown, where: string) => void;
  /** Worker options (tests shorten the cancel grace). */
  worker?: TaskRunnerOptions['worker'];
  /** The data directory (its free space is watched); none: only repositories are. */
  dataDir?: string;
  /** Asks a second administrator to approve a job's retention (four eyes); the API's approvals. */
  requestApproval: UpkeepOptions['requestApproval'];
  /**
   * Scale-out (docs/scale.md): the state database is PostgreSQL at `url`, shared with other
   * servers and workers. The limits and bandwidth rules are published for the workers, each
   * scheduled firing is claimed once, live events cross servers. `localWorker` false: this
   * server never runs a task (API and scheduler only); otherwise it takes tasks from the shared
   * queue like a `coffer worker` of every host named `name`, `tasks` at once.
   */
  cluster?: { url: string; name: string; version: string; localWorker: boolean; tasks?: number; leaseMs?: number };
  /** Where backups of VMs whose source is an agent run (src/server/agents/). */
  remote?: TaskRunnerOptions['remote'];
}

/** Space is low under this share free when `health.min-free` says nothing. */
const DEFAULT_MIN_FREE = '10%';
const DEFAULT_HEALTH_INTERVAL_MS = 15 * 60_000;

/** The filesystems whose free space is watched: the data directory and every repository on a local path. */
export function spaceLocations(config: ServiceConfig, dataDir: string | undefined): SpaceLocation[] {
  const out: SpaceLocation[] = dataDir === undefined ? [] : [{ name: 'data directory', repository: false, path: dataDir }];
  for (const r of config.repositories ?? []) {
    const path = localRepositoryPath(r.url);
    if (path !== undefined) out.push({ name: r.name, repository: true, path });
  }
  return out;
}

/** How often finished runs older than the history setting are forgotten. */
const HISTORY_SWEEP_MS = 3_600_000;
/** Tasks whose end may have added or removed snapshots of their repository. */
const SNAPSHOT_CHANGING_TASKS = new Set<string>(['backup', 'forget', 'prune', 'sync']);

/**
 * Starts the runner (marking what a killed server left running as interrupted, and retrying it
 * per policy), the notifier and the event bridge; the scheduler is made but ticks only after
 * {@link ServiceParts.startScheduling}.
 */
export async function startServiceParts(options: ServicePartsOptions): Promise<ServiceParts> {
  const { db, config: store, catalog } = options;
  const config = () => store.config;
  const report = (where: string) => (error: unknown) => options.logError(error, where);

  const bandwidth = bandwidthRules(config().limits);
  for (const warning of bandwidth.warnings) options.print(`warning: ${warning}`);
  // The scheduler adds the jobs' own limits to these whenever the jobs are set; a getter so an
  // edit of `limits` is seen by its next setJobs.
  let limits = concurrencyLimits(config().limits);
  const cluster = options.cluster;
  const leaseMs = cluster?.leaseMs ?? DEFAULT_LEASE_MS;
  const registry = cluster === undefined ? undefined : new WorkerRegistry(db);
  const queue = cluster === undefined || !cluster.localWorker ? undefined : new PostgresTaskQueue(db, { name: cluster.name, capacity: cluster.tasks ?? 4, leaseMs });
  const guard = latencyGuard(config().limits);
  const runner = new TaskRunner(db, {
    limits, bandwidth: bandwidth.rules, retry: retryPolicy(config()), ...(options.worker === undefined ? {} : { worker: options.worker }),
    ...(guard === undefined ? {} : { latencyGuard: guard }),
    ...(options.remote === undefined ? {} : { remote: options.remote }),
    ...(cluster === undefined ? {} : queue === undefined ? { dispatch: false } : { shared: queue }),
  });
  runner.events.on('error', report('task runner'));
  // With several servers (cluster), only the leader delivers notifications, keeps the jobs' upkeep and checks health (leader-lease.ts).
  // A server of a cluster leads only once elected: from its start until then (its listener
  // already hears the other servers' events) it records and sends nothing, or each run that ended
  // meanwhile was recorded twice (found by the leader test: a second server still starting).
  let leader: LeaderLease | undefined;
  const leading = () => cluster === undefined || leader?.leading === true;
  const notifier = await Notifier.start({ db, config: parseNotificationConfig(config().notifications), onError: report('notifier'), delivering: cluster === undefined });
  const scheduler = new JobScheduler(db, runner, scheduledJobs(config), {
    get limits() {
      return limits;
    },
    ...(cluster === undefined ? {} : { claimFiring: (job: string, firing: Date) => claimFiring(db, job, firing, cluster.name) }),
  });
  scheduler.events.on('error', report('scheduler'));
  // What every worker applies: the limits with the jobs' own (setJobs folded them in), the rules, the retries.
  const publish = () => (cluster === undefined ? Promise.resolve() : publishPolicy(db, { limits: runner.limitsNow(), bandwidth: bandwidthRules(config().limits).rules, retry: retryPolicy(config()), latencyGuard: latencyGuard(config().limits) ?? null }));
  await publish();
  const relay = cluster === undefined ? undefined : relayEvents(runner.events, db);
  const wakeups = cluster === undefined || queue === undefined ? undefined : wakeOnQueueChanges(cluster.url, () => void runner.dispatch());
  const listener = cluster === undefined ? undefined : listenForEvents(cluster.url, runner.events, { getTask: (id) => runner.getTask(id), getRun: (id) => runner.getRun(id) }, report('events from other processes'));
  const bridge = bridgeEvents(runner, scheduler, { emit: async (event) => (leading() ? notifier.emit(event) : undefined) }, {
    vmTags: (vm) => config().vms?.find((v) => v.name === vm)?.tags ?? [],
    storedBytes: async (repository) => (await catalog.stats(repository)).bytesStored,
    onError: report('notifications of task events'),
  });

  // What the live events missed (a crash, a dropped listener, no leader for a while), from the tasks and runs that ended.
  const sweep = new EventSweep({ db, tasksEndedBetween: (w, limit) => runner.tasksEndedBetween(w, limit), runsEndedBetween: (w, limit) => runner.runsEndedBetween(w, limit), bridge, onError: report('the sweep of ended tasks for notifications') });

  const upkeepRunner = cluster === undefined ? runner : { events: gatedEvents(runner.events, ['run', 'task'], leading), submitTask: runner.submitTask.bind(runner), waitForTask: runner.waitForTask.bind(runner) };
  const upkeep = new JobUpkeep(upkeepRunner, upkeepJobs(config), {
    fourEyes: () => config().security?.['four-eyes'] === true,
    requestApproval: options.requestApproval,
    latestSnapshot: (repository, vm) => catalog.latestSnapshotId(repository, vm),
    store: new UpkeepScheduleStore(db),
  });
  upkeep.events.on('error', report('job upkeep (retention, verify, test-restore, prune)'));
  // The snapshot index follows what the server's own tasks write and remove.
  runner.events.on('task', (task: TaskInfo) => {
    if (task.status === 'queued' || task.status === 'running' || task.repository === null || !SNAPSHOT_CHANGING_TASKS.has(task.kind)) return;
    // A backup that wrote no snapshot changed nothing; one that did is added by its id alone.
    if (task.kind === 'backup' && task.result === null) return;
    const written = task.kind === 'backup' && task.result !== null ? [task.result.snapshot] : undefined;
    catalog.invalidate(task.repository, report(`refreshing the snapshot index of repository ${task.repository}`), written);
    // A sync adds snapshots to its destination, not to its repository (the source): the
    // destination's index is read again too (every other repository when a failed sync left
    // no report naming it: it may have copied some before failing).
    if (task.kind === 'sync') for (const name of syncDestinations(task, config())) catalog.invalidate(name, report(`refreshing the snapshot index of repository ${name}`));
  });
  catalog.startRefreshing((error, repository) => report(`refreshing the snapshot index of repository ${repository}`)(error));

  const health = new HealthWatch({
    emit: (event) => notifier.emit(event),
    pastRpo: async () => coverageReport(config(), await catalog.lastBackups(), Date.now()).pastRpo,
    locations: () => spaceLocations(config(), options.dataDir),
    minFree: () => parseMinFree(config().health?.['min-free'] ?? DEFAULT_MIN_FREE),
    vmTags: (vm) => config().vms?.find((v) => v.name === vm)?.tags ?? [],
    onError: report('health checks (RPO, free space)'),
  });

  if (registry !== undefined && queue !== undefined && cluster !== undefined) await registry.register({ name: cluster.name, capacity: queue.capacity, version: cluster.version, pid: process.pid }, leaseMs);
  const heartbeats = registry === undefined || queue === undefined || cluster === undefined ? undefined
    : startHeartbeats({ db, registry, runner, queue, name: cluster.name, leaseMs, heartbeatMs: Math.floor(leaseMs / 3), print: options.print });
  const interrupted = await runner.start();
  if (interrupted.length > 0) options.print(`${interrupted.length} task(s) were running when the server stopped: marked interrupted, retried per policy (${interrupted.map((t) => t.vm ?? t.id).join(', ')})`);

  store.onChange((next: ServiceConfig) => {
    try {
      const rules = bandwidthRules(next.limits);
      limits = concurrencyLimits(next.limits);
      runner.setPolicies({ bandwidth: rules.rules, retry: retryPolicy(next), latencyGuard: latencyGuard(next.limits) ?? null });
      scheduler.setJobs(scheduledJobs(config));
      upkeep.setJobs(upkeepJobs(config));
      void publish().catch(report('publishing the limits for the workers'));
      notifier.reconfigure(parseNotificationConfig(next.notifications));
      for (const warning of rules.warnings) options.print(`warning: ${warning}`);
    } catch (error) {
      options.logError(error, 'applying a configuration change');
    }
  });

  const forget = () => void runner.forgetHistory(historyMs(config())).catch(report('history retention'));
  const historyTimer = setInterval(forget, HISTORY_SWEEP_MS);
  historyTimer.unref();
  forget();

  return {
    runner,
    scheduler,
    notifier,
    upkeep,
    health,
    interrupted,
    async metricsRoutes() {
      const settings = config().metrics ?? {};
      if (settings.enabled === false) return undefined;
      const tokenFile = settings['token-file'];
      let bearerToken: string | undefined;
      if (tokenFile !== undefined) {
        bearerToken = (await readFile(tokenFile, 'utf8').catch((cause: unknown) => {
          throw new CofferError('E_USAGE', `metrics.token-file ${tokenFile}: cannot read it (${(cause as Error).message.split('\n')[0] ?? ''})`, { cause });
        })).replace(/\r?\n$/, '');
        if (bearerToken === '') throw new CofferError('E_USAGE', `metrics.token-file ${tokenFile} is empty`);
      }
      // With workers sharing the database, their figures too (docs/scale.md).
      const metrics = new CofferMetrics(registry === undefined ? notifier : {
        figures: async () => ({
          ...(await notifier.figures()),
          workers: (await registry.list(90_000)).map((w) => ({ name: w.name, alive: w.alive, tasksRunning: w.tasksRunning, tasksDone: w.tasksDone, bytesRead: w.bytesRead, lastHeartbeat: Date.parse(w.lastHeartbeat) })),
        }),
      });
      return (app) => registerMetricsRoute(app, metrics, bearerToken === undefined ? {} : { bearerToken });
    },
    startScheduling() {
      scheduler.start();
      const startLed = () => {
        notifier.setDelivering(true);
        sweep.start();
        upkeep.start();
        const interval = config().health?.interval;
        health.start((interval === undefined ? undefined : parseDuration(interval)) ?? DEFAULT_HEALTH_INTERVAL_MS);
      };
      if (cluster === undefined) return startLed();
      leader = new LeaderLease(db, {
        role: UPKEEP_ROLE, holder: cluster.name, leaseMs,
        onElected: () => {
          options.print(`${cluster.name}: leader (notifications, the jobs' upkeep, health checks)`);
          startLed();
        },
        onDeposed: async () => {
          options.print(`${cluster.name}: no longer leader`);
          notifier.setDelivering(false);
          await sweep.stop();
          await upkeep.stop();
          await health.stop();
        },
        onError: report('leader lease'),
      });
      leader.start();
    },
    async drain(timeLeftMs) {
      const deadline = Date.now() + timeLeftMs;
      clearInterval(historyTimer);
      await scheduler.stop();
      await leader?.stop();
      await sweep.stop();
      await upkeep.stop();
      await health.stop();
      if (queue !== undefined) queue.paused = true;
      await runner.drain(Math.max(0, deadline - Date.now() - 500));
      await heartbeats?.stop();
      await relay?.idle();
      relay?.stop();
      await listener?.close();
      await wakeups?.close();
      await bridge.idle();
      await notifier.close();
    },
  };
}
