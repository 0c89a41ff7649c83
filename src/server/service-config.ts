/**
 * What the task runner, the scheduler and the notifier get from the configuration file, pure:
 * the concurrency limits, the bandwidth rules, the retry policy, the jobs as the scheduler
 * takes them (their VMs resolved from the inventory at run time), and the VM targets a backup
 * task needs (source, host, datastore, repository with its passphrase file).
 */
import type { VmBackupSource } from '../backup/index.js';
import { CofferError } from '../errors/index.js';
import type { ConcurrencyLimits, LimitTable } from '../jobs/index.js';
import { parseDuration, parseRate, type JobConfig, type LimitsConfig, type RetentionConfig, type ServiceConfig, type VmConfig } from './config/index.js';
import { selectVms } from './inventory/index.js';
import { parseRetentionDuration, type RetentionPolicy } from '../repo/index.js';
import type { ScheduledJob, UpkeepJob } from './scheduler/index.js';
import type { BandwidthRule, LatencyGuard, RetryPolicy, TaskInfo, VmTarget } from './tasks/index.js';

/** How long finished runs, their tasks and logs are kept when the config says nothing (`tasks.history`). */
export const DEFAULT_HISTORY_MS = 90 * 86_400_000;

/** The config's `limits` as the planner's layered limits (per host 1 unless said otherwise). */
export function concurrencyLimits(limits: LimitsConfig | undefined): ConcurrencyLimits {
  const table = (fallback: number | undefined, overrides: Record<string, number> | undefined): LimitTable => ({
    ...(fallback === undefined ? {} : { default: fallback }),
    ...(overrides === undefined ? {} : { overrides }),
  });
  return {
    ...(limits?.global === undefined ? {} : { global: limits.global }),
    host: table(limits?.['per-host'], limits?.hosts),
    datastore: table(limits?.['per-datastore'], limits?.datastores),
    repository: table(limits?.['per-repository'], limits?.repositories),
  };
}

/**
 * The config's bandwidth rules as the runner's. `when` (`mon..fri 08:00-18:00`, `sat,sun`,
 * `22:00-06:00`) becomes calendar events matched minute by minute, in the rule's `timezone`
 * (default UTC); a span across midnight is split in two (its days then name the day of each
 * minute). A rule with `read` and `write` gives one rule per direction. `hosts` and
 * `repositories` scope a rule to the backups of those hosts or into those repositories.
 * (`warnings` is kept for rules the runner cannot apply; none today.)
 */
export function bandwidthRules(limits: LimitsConfig | undefined): { rules: BandwidthRule[]; warnings: string[] } {
  const rules: BandwidthRule[] = [];
  const warnings: string[] = [];
  (limits?.bandwidth ?? []).forEach((rule, i) => {
    const events = rule.when === undefined ? [undefined] : calendarEvents(rule.when);
    for (const [direction, rate] of [['source-read', rule.read], ['repository-write', rule.write]] as const) {
      if (rate === undefined) continue;
      const bytesPerSecond = parseRate(rate);
      if (bytesPerSecond === undefined) throw new CofferError('E_USAGE', `limits.bandwidth[${i}]: "${rate}" is not a rate`);
      for (const at of events) {
        rules.push({
          direction, bytesPerSecond, ...(at === undefined ? {} : { at, timeZone: rule.timezone ?? 'UTC' }),
          ...(rule.hosts === undefined ? {} : { hosts: rule.hosts }), ...(rule.repositories === undefined ? {} : { repositories: rule.repositories }),
        });
      }
    }
  });
  return { rules, warnings };
}

/** The source latency guard of `limits['latency-guard']` (docs/tasks.md), or undefined when none is set. */
export function latencyGuard(limits: LimitsConfig | undefined): LatencyGuard | undefined {
  const guard = limits?.['latency-guard'];
  if (guard === undefined) return undefined;
  const minRead = guard['min-read'] === undefined ? undefined : parseRate(guard['min-read']);
  if (guard['min-read'] !== undefined && minRead === undefined) throw new CofferError('E_USAGE', `limits.latency-guard.min-read: "${guard['min-read']}" is not a rate`);
  return { thresholdMs: guard['threshold-ms'], ...(guard.throttle === undefined ? {} : { throttle: guard.throttle }), ...(minRead === undefined ? {} : { minBytesPerSecond: minRead }) };
}

/** `mon..fri 08:30-18:00` → calendar events covering exactly those minutes. */
export function calendarEvents(when: string): string[] {
  const match = /^(\S*?)\s*(?:(\d\d):(\d\d)-(\d\d):(\d\d))?$/.exec(when.trim());
  if (match === null) throw new CofferError('E_USAGE', `bandwidth rule: "${when}" is not days and hours such as "mon..fri 08:00-18:00"`);
  const days = match[1] === '' || match[1] === undefined ? '' : `${match[1]} `;
  if (match[2] === undefined) return [`${days}*:*`];
  const from = Number(match[2]) * 60 + Number(match[3]);
  const to = Number(match[4]) * 60 + Number(match[5]);
  const spans: [number, number][] = from < to ? [[from, to]] : [[from, 24 * 60], [0, to]];
  return spans.flatMap(([a, b]) => minuteSpan(a, b)).map((hm) => `${days}${hm}`);
}

/** Calendar time parts covering minutes [a, b) of a day: `8:30..59`, `9..17:*`, `18:0..14`. */
function minuteSpan(a: number, b: number): string[] {
  const out: string[] = [];
  let m = a;
  if (m % 60 !== 0 && m < b) {
    const end = Math.min(b, m - (m % 60) + 60);
    out.push(`${Math.floor(m / 60)}:${m % 60}..${(end - 1) % 60}`);
    m = end;
  }
  const wholeHours = Math.floor((b - m) / 60);
  if (wholeHours > 0) {
    out.push(`${m / 60}..${m / 60 + wholeHours - 1}:*`);
    m += wholeHours * 60;
  }
  if (m < b) out.push(`${m / 60}:0..${b - m - 1}`);
  return out;
}

/** The retry policy of `tasks`. */
export function retryPolicy(config: ServiceConfig): RetryPolicy {
  const tasks = config.tasks ?? {};
  const delayMs = tasks['retry-delay'] === undefined ? undefined : parseDuration(tasks['retry-delay']);
  return {
    ...(tasks.retries === undefined ? {} : { retries: tasks.retries }),
    ...(delayMs === undefined ? {} : { delayMs }),
    ...(tasks['retry-backoff'] === undefined ? {} : { backoff: tasks['retry-backoff'] }),
  };
}

/** How long finished runs are kept (`tasks.history`). */
export function historyMs(config: ServiceConfig): number {
  const text = config.tasks?.history;
  return (text === undefined ? undefined : parseDuration(text)) ?? DEFAULT_HISTORY_MS;
}

/**
 * One VM as a backup task's target, writing to `repositoryName`.
 * @throws CofferError E_USAGE when the repository is not in the configuration.
 */
export function vmTarget(config: ServiceConfig, vm: VmConfig, repositoryName: string): VmTarget {
  const repository = (config.repositories ?? []).find((r) => r.name === repositoryName);
  if (repository === undefined) throw new CofferError('E_USAGE', `no repository named ${repositoryName} in the configuration`);
  return {
    vm: vm.name,
    host: vm.host,
    ...(vm.datastore === undefined ? {} : { datastore: vm.datastore }),
    repository: { name: repository.name, url: repository.url, ...(repository['passphrase-file'] === undefined ? {} : { passphraseFile: repository['passphrase-file'] }) },
    source: backupSourceOf(vm.source),
    ...(vm.tags === undefined ? {} : { tags: vm.tags }),
  };
}

/**
 * The config's jobs as the scheduler takes them. `config` is read when a run starts, so a VM
 * added by an edit is picked up by the next run.
 */
export function scheduledJobs(config: () => ServiceConfig): ScheduledJob[] {
  return (config().jobs ?? []).map((job) => scheduledJob(job, config));
}

function scheduledJob(job: JobConfig, config: () => ServiceConfig): ScheduledJob {
  return {
    name: job.name,
    schedule: job.schedule,
    ...(job.timezone === undefined ? {} : { timeZone: job.timezone }),
    ...(job['repeat-missed'] === undefined ? {} : { repeatMissed: job['repeat-missed'] }),
    ...(job.window === undefined ? {} : { window: `${job.window.start}-${job.window.end}` }),
    ...(job.limits?.concurrent === undefined ? {} : { concurrency: job.limits.concurrent }),
    ...(job.after === undefined ? {} : { after: job.after }),
    async resolveVms() {
      const now = config();
      const current = (now.jobs ?? []).find((j) => j.name === job.name) ?? job;
      return selectVms(current.select, now.vms ?? []).map((vm) => vmTarget(now, vm, current.repository));
    },
  };
}

/**
 * The config's jobs as the upkeep takes them (retention after each run, verify, test-restore
 * and prune schedules); jobs that declare none of these are left out.
 */
export function upkeepJobs(config: () => ServiceConfig): UpkeepJob[] {
  const out: UpkeepJob[] = [];
  for (const job of config().jobs ?? []) {
    if (job.retention === undefined && job.verify === undefined && job['test-restore'] === undefined) continue;
    const repository = (config().repositories ?? []).find((r) => r.name === job.repository);
    if (repository === undefined) continue;
    const retention = job.retention;
    out.push({
      name: job.name,
      repository: { name: repository.name, url: repository.url, ...(repository['passphrase-file'] === undefined ? {} : { passphraseFile: repository['passphrase-file'] }) },
      ...(job.timezone === undefined ? {} : { timeZone: job.timezone }),
      ...(retention === undefined ? {} : {
        retention: {
          policy: retentionPolicy(retention),
          ...(retention['prune-schedule'] === undefined ? {} : { pruneSchedule: retention['prune-schedule'] }),
          ...(retention['prune-after-forgets'] === undefined ? {} : { pruneAfterForgets: retention['prune-after-forgets'] }),
        },
      }),
      ...(job.verify === undefined ? {} : { verify: { schedule: job.verify.schedule, ...(job.verify['read-data-subset'] === undefined ? {} : { subset: job.verify['read-data-subset'] }) } }),
      ...(job['test-restore'] === undefined ? {} : {
        testRestore: {
          schedule: job['test-restore'].schedule,
          ...(job['test-restore'].boot === true ? { boot: job['test-restore']['boot-expect'] === undefined ? {} : { expect: job['test-restore']['boot-expect'] } } : {}),
        },
      }),
      async vms() {
        const now = config();
        const current = (now.jobs ?? []).find((j) => j.name === job.name) ?? job;
        return selectVms(current.select, now.vms ?? []).map((vm) => vm.name);
      },
    });
  }
  return out;
}

/** A job's `retention` as the repository's policy (`keep-within` as whole hours, rounded up). */
export function retentionPolicy(retention: RetentionConfig): RetentionPolicy {
  const withinMs = retention['keep-within'] === undefined ? undefined : parseDuration(retention['keep-within']);
  return {
    ...(retention['keep-last'] === undefined ? {} : { last: retention['keep-last'] }),
    ...(retention['keep-hourly'] === undefined ? {} : { hourly: retention['keep-hourly'] }),
    ...(retention['keep-daily'] === undefined ? {} : { daily: retention['keep-daily'] }),
    ...(retention['keep-weekly'] === undefined ? {} : { weekly: retention['keep-weekly'] }),
    ...(retention['keep-monthly'] === undefined ? {} : { monthly: retention['keep-monthly'] }),
    ...(retention['keep-yearly'] === undefined ? {} : { yearly: retention['keep-yearly'] }),
    ...(withinMs === undefined ? {} : { within: parseRetentionDuration(`${Math.max(1, Math.ceil(withinMs / 3_600_000))}h`) }),
    ...(retention['keep-tags'] === undefined ? {} : { tags: retention['keep-tags'].map((tag) => [tag]) }),
  };
}

/**
 * The repositories a finished sync task may have copied snapshots into (their snapshot index
 * is read again): the destination its report names, or, when it left no report (it failed
 * and may have copied some snapshots before), every configured repository but its source.
 */
export function syncDestinations(task: Pick<TaskInfo, 'repository' | 'report'>, config: Pick<ServiceConfig, 'repositories'>): string[] {
  const to = (task.report?.detail as { to?: unknown } | undefined)?.to;
  if (typeof to === 'string') return [to];
  return (config.repositories ?? []).map((r) => r.name).filter((name) => name !== task.repository);
}

/** A VM's source as the configuration writes it (kebab-case, durations and sizes as text), as a backup request takes it. */
export function backupSourceOf(source: VmConfig['source']): VmBackupSource {
  if ('images' in source) return { images: source.images, ...(source['source-format'] !== undefined ? { sourceFormat: source['source-format'] } : {}) };
  if (!('qmp' in source) && !('libvirt' in source)) return source;
  const hooks = {
    ...(source['pre-capture'] !== undefined ? { pre: source['pre-capture'] } : {}),
    ...(source['post-capture'] !== undefined ? { post: source['post-capture'] } : {}),
  };
  const minFree = source['scratch-min-free'] === undefined ? undefined : parseRate(source['scratch-min-free']);
  const scratch = {
    ...(source['scratch-dir'] !== undefined ? { dir: source['scratch-dir'] } : {}),
    ...(minFree !== undefined ? { minFreeBytes: minFree } : {}),
  };
  const live = {
    ...(Object.keys(hooks).length > 0 ? { hooks } : {}),
    ...(Object.keys(scratch).length > 0 ? { scratch } : {}),
  };
  if ('libvirt' in source) return { libvirt: { ...source.libvirt, ...(source.freeze === false ? { freeze: false } : {}) }, ...live };
  const freezeTimeout = source['freeze-timeout'] === undefined ? undefined : parseDuration(source['freeze-timeout']);
  return {
    qmp: source.qmp,
    ...(source['guest-agent'] !== undefined ? { guestAgent: source['guest-agent'] } : {}),
    ...(source.freeze === false ? { freeze: false } : {}),
    ...(freezeTimeout !== undefined ? { freezeTimeoutMs: freezeTimeout } : {}),
    ...live,
  };
}
