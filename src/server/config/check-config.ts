/**
 * The rules the JSON schema cannot state: unique names, references between sections (a VM's
 * host, a job's repository and selected hosts, `after`), schedules that parse in their time
 * zone (the scheduler's own parser, src/jobs), durations and rates, and the notifications
 * section by server/notify's own checks (targets named by rules exist…). Pure: returns problems
 * with their key paths; the loader adds the line numbers.
 */
import { parseSchedule } from '../../jobs/index.js';
import { validateNotificationConfig } from '../notify/index.js';
import type { ServiceConfig } from './config-schema.js';
import { parseDuration, parseRate } from './durations.js';

export interface PathProblem {
  path: (string | number)[];
  message: string;
}

export function checkConfig(config: ServiceConfig): PathProblem[] {
  const problems: PathProblem[] = [];
  const add = (path: (string | number)[], message: string) => problems.push({ path, message });

  const names = (section: 'repositories' | 'hosts' | 'vms' | 'jobs'): Set<string> => {
    const seen = new Set<string>();
    (config[section] ?? []).forEach((item, i) => {
      if (seen.has(item.name)) add([section, i, 'name'], `the name "${item.name}" is used twice in ${section}`);
      seen.add(item.name);
    });
    return seen;
  };
  const repositories = names('repositories');
  const hosts = names('hosts');
  names('vms');
  const jobs = names('jobs');
  const hostByName = new Map((config.hosts ?? []).map((h) => [h.name, h]));

  (config.vms ?? []).forEach((vm, i) => {
    const host = hostByName.get(vm.host);
    if (host === undefined) add(['vms', i, 'host'], `no host "${vm.host}" in hosts`);
    else if (vm.datastore !== undefined && host.datastores !== undefined && !host.datastores.includes(vm.datastore)) {
      add(['vms', i, 'datastore'], `host "${vm.host}" has no datastore "${vm.datastore}" (it has: ${host.datastores.join(', ') || 'none'})`);
    }
    if (vm.rpo !== undefined && parseDuration(vm.rpo) === undefined) add(['vms', i, 'rpo'], `"${vm.rpo}" is not a duration such as 26h or 7d`);
    const minFree = 'scratch-min-free' in vm.source ? vm.source['scratch-min-free'] : undefined;
    if (minFree !== undefined && (parseRate(minFree) ?? 0) < 1024 * 1024) add(['vms', i, 'source', 'scratch-min-free'], `"${minFree}" is not a size of at least 1M`);
  });

  (config.jobs ?? []).forEach((job, i) => {
    if (!repositories.has(job.repository)) add(['jobs', i, 'repository'], `no repository "${job.repository}" in repositories`);
    (job.select.hosts ?? []).forEach((h, k) => {
      if (!hosts.has(h)) add(['jobs', i, 'select', 'hosts', k], `no host "${h}" in hosts`);
    });
    if (job.after !== undefined && (!jobs.has(job.after) || job.after === job.name)) add(['jobs', i, 'after'], `no other job "${job.after}" in jobs`);
    const zone = job.timezone ?? 'UTC';
    const schedules: [(string | number)[], string][] = [[['jobs', i, 'schedule'], job.schedule]];
    if (job.verify !== undefined) schedules.push([['jobs', i, 'verify', 'schedule'], job.verify.schedule]);
    if (job['test-restore'] !== undefined) schedules.push([['jobs', i, 'test-restore', 'schedule'], job['test-restore'].schedule]);
    if (job.retention?.['prune-schedule'] !== undefined) schedules.push([['jobs', i, 'retention', 'prune-schedule'], job.retention['prune-schedule']]);
    if (job.retention !== undefined && !Object.keys(job.retention).some((key) => key.startsWith('keep-'))) {
      add(['jobs', i, 'retention'], 'a retention without any keep-… would remove every snapshot after each run: say what to keep');
    }
    for (const [path, text] of schedules) {
      try {
        parseSchedule(text, { timeZone: zone });
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        add(/unknown time zone/.test(message) && job.timezone !== undefined ? ['jobs', i, 'timezone'] : path, message);
      }
    }
    if (job.retention?.['keep-within'] !== undefined && parseDuration(job.retention['keep-within']) === undefined) {
      add(['jobs', i, 'retention', 'keep-within'], `"${job.retention['keep-within']}" is not a duration`);
    }
  });

  const limits = config.limits;
  for (const [section, known] of [['hosts', hosts], ['repositories', repositories]] as const) {
    for (const name of Object.keys(limits?.[section] ?? {})) {
      if (!known.has(name)) add(['limits', section, name], `no ${section === 'hosts' ? 'host' : 'repository'} "${name}"`);
    }
  }
  const minRead = limits?.['latency-guard']?.['min-read'];
  if (minRead !== undefined && (parseRate(minRead) ?? 0) < 1024) add(['limits', 'latency-guard', 'min-read'], `"${minRead}" is not a rate of at least 1K bytes per second`);
  (limits?.bandwidth ?? []).forEach((rule, i) => {
    if (rule.read === undefined && rule.write === undefined) add(['limits', 'bandwidth', i], 'a bandwidth rule needs read or write (or both)');
    if (rule.when !== undefined && !WHEN.test(rule.when)) add(['limits', 'bandwidth', i, 'when'], `"${rule.when}" is not days and hours such as "mon..fri 08:00-18:00"`);
    if (rule.timezone !== undefined && !knownTimeZone(rule.timezone)) add(['limits', 'bandwidth', i, 'timezone'], `unknown time zone "${rule.timezone}"`);
    (rule.hosts ?? []).forEach((h, k) => {
      if (!hosts.has(h)) add(['limits', 'bandwidth', i, 'hosts', k], `no host "${h}" in hosts`);
    });
    (rule.repositories ?? []).forEach((r, k) => {
      if (!repositories.has(r)) add(['limits', 'bandwidth', i, 'repositories', k], `no repository "${r}" in repositories`);
    });
  });
  for (const key of ['retry-delay', 'history'] as const) {
    const text = config.tasks?.[key];
    if (text !== undefined && parseDuration(text) === undefined) add(['tasks', key], `"${text}" is not a duration such as 5m or 90d`);
  }
  if (config.notifications !== undefined) {
    const notifications = validateNotificationConfig(config.notifications);
    if (!notifications.ok) for (const issue of notifications.issues) add(['notifications', ...issue.path], issue.message);
  }
  return problems;
}

const DAY = '(mon|tue|wed|thu|fri|sat|sun)';
const HOUR = '([01][0-9]|2[0-3]):[0-5][0-9]';
/** `mon..fri 08:00-18:00`, `sat,sun`, `22:00-06:00`: days (ranges or lists), hours, or both. */
const WHEN = new RegExp(`^((${DAY}(\\.\\.${DAY})?)(,${DAY}(\\.\\.${DAY})?)*)?( ?${HOUR}-${HOUR})?$`);

function knownTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
