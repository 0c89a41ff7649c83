/**
 * Checks the `notifications` section of the configuration (its YAML shape, see
 * notification-config-schema.ts and docs/notifications.md) and builds the typed
 * {@link NotificationConfig}. Every problem is reported with the path of the key at fault, so
 * the config loader can print `file:line: key: message`; nothing stops at the first one.
 */
import { CofferError, isCofferError } from '../../errors/index.js';
import { parseSchedule, type Schedule } from '../../jobs/index.js';
import { parseDuration } from './duration.js';
import { EVENT_TYPES, SEVERITIES, type EventType, type Severity } from './event.js';
import {
  NOTIFY_DEFAULTS,
  type DailySummary,
  type NotificationConfig,
  type NotificationRule,
  type NotificationTarget,
  type DeliveryRetryPolicy,
  type TimeWindow,
} from './notification-config.js';

/** One problem: the path of keys to the value at fault and what is wrong. */
export interface NotificationConfigIssue {
  path: (string | number)[];
  message: string;
}

export type NotificationConfigResult =
  | { ok: true; config: NotificationConfig }
  | { ok: false; issues: NotificationConfigIssue[] };

export interface ValidateOptions {
  /** The time zone of windows and the summary that name none (default `UTC`). */
  defaultTimeZone?: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Checks `value` (the parsed YAML of the `notifications` section; undefined or null means no
 * notifications) and returns the typed configuration or every problem found.
 * @example validateNotificationConfig(yaml.parse(text).notifications)
 */
export function validateNotificationConfig(value: unknown, options: ValidateOptions = {}): NotificationConfigResult {
  const issues: NotificationConfigIssue[] = [];
  const check = new Checker(issues, options.defaultTimeZone ?? 'UTC');
  const config = check.config(value ?? {});
  return issues.length === 0 ? { ok: true, config } : { ok: false, issues };
}

/**
 * Like {@link validateNotificationConfig}, but throws.
 * @throws CofferError E_USAGE listing every problem (`notifications.rules[0].targets[1]: …`).
 */
export function parseNotificationConfig(value: unknown, options: ValidateOptions = {}): NotificationConfig {
  const result = validateNotificationConfig(value, options);
  if (result.ok) return result.config;
  const lines = result.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`);
  throw new CofferError('E_USAGE', `the notifications configuration is invalid: ${lines.join('; ')}`);
}

/** `['rules', 0, 'targets']` → `notifications.rules[0].targets`. */
export function formatPath(path: readonly (string | number)[]): string {
  return path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : `${out}.${key}`), 'notifications');
}

type Path = (string | number)[];
type Obj = Record<string, unknown>;

class Checker {
  constructor(
    private readonly issues: NotificationConfigIssue[],
    private readonly defaultTimeZone: string,
  ) {}

  config(value: unknown): NotificationConfig {
    const config: NotificationConfig = { targets: new Map(), rules: [], historyDays: NOTIFY_DEFAULTS.historyDays };
    const obj = this.object(value, [], ['targets', 'rules', 'daily-summary', 'history-days']);
    if (obj === undefined) return config;
    const targets = this.object(obj.targets ?? {}, ['targets']);
    for (const [name, raw] of Object.entries(targets ?? {})) {
      if (!NAME.test(name)) this.issue(['targets', name], 'a target name is letters, digits, `.`, `_` and `-`');
      const target = this.target(name, raw, ['targets', name]);
      if (target !== undefined) config.targets.set(name, target);
    }
    const rules = obj.rules ?? [];
    if (!Array.isArray(rules)) this.issue(['rules'], 'must be a list of rules');
    else {
      const seen = new Set<string>();
      rules.forEach((raw, index) => {
        const rule = this.rule(raw, ['rules', index], targets ?? {});
        if (rule === undefined) return;
        if (seen.has(rule.name)) this.issue(['rules', index, 'name'], `another rule is named ${JSON.stringify(rule.name)}`);
        seen.add(rule.name);
        config.rules.push(rule);
      });
    }
    if (obj['daily-summary'] !== undefined) {
      const summary = this.summary(obj['daily-summary'], ['daily-summary'], targets ?? {});
      if (summary !== undefined) config.dailySummary = summary;
    }
    if (obj['history-days'] !== undefined) {
      config.historyDays = this.integer(obj['history-days'], ['history-days'], 1, 3660) ?? config.historyDays;
    }
    return config;
  }

  private target(name: string, value: unknown, path: Path): NotificationTarget | undefined {
    const type = (value as Obj | null)?.type;
    if (type === 'smtp') {
      const o = this.object(value, path, ['type', 'host', 'port', 'tls', 'tls-verify', 'user', 'password-file', 'from', 'to', 'timeout', 'retry']);
      if (o === undefined) return undefined;
      const tls = o.tls ?? 'starttls';
      if (tls !== 'none' && tls !== 'starttls' && tls !== 'tls') this.issue([...path, 'tls'], 'must be none, starttls or tls');
      const to = this.stringList(o.to, [...path, 'to'], true);
      if (to !== undefined && to.length === 0) this.issue([...path, 'to'], 'needs at least one address');
      const tlsMode = tls as 'none' | 'starttls' | 'tls';
      const target = {
        type: 'smtp' as const,
        name,
        host: this.string(o.host, [...path, 'host']) ?? '',
        port: o.port === undefined ? (tlsMode === 'tls' ? 465 : tlsMode === 'starttls' ? 587 : 25) : (this.integer(o.port, [...path, 'port'], 1, 65535) ?? 0),
        tls: tlsMode,
        tlsVerify: o['tls-verify'] === undefined ? true : this.boolean(o['tls-verify'], [...path, 'tls-verify']),
        from: this.string(o.from, [...path, 'from']) ?? '',
        to: to ?? [],
        timeoutMs: this.duration(o.timeout, [...path, 'timeout']) ?? NOTIFY_DEFAULTS.timeoutMs,
        retry: this.retry(o.retry, [...path, 'retry']),
      };
      const user = o.user === undefined ? undefined : this.string(o.user, [...path, 'user']);
      const passwordFile = o['password-file'] === undefined ? undefined : this.string(o['password-file'], [...path, 'password-file']);
      if (passwordFile !== undefined && user === undefined) this.issue([...path, 'password-file'], 'a password needs a user');
      return { ...target, ...(user === undefined ? {} : { user }), ...(passwordFile === undefined ? {} : { passwordFile }) };
    }
    if (type === 'webhook') {
      const o = this.object(value, path, ['type', 'url', 'method', 'headers', 'body', 'secret-file', 'timeout', 'retry']);
      if (o === undefined) return undefined;
      const url = this.string(o.url, [...path, 'url']) ?? '';
      if (url !== '' && !/^https?:\/\/[^/]/.test(url)) this.issue([...path, 'url'], 'must be an http:// or https:// URL');
      else if (url !== '') {
        try {
          new URL(url);
        } catch {
          this.issue([...path, 'url'], 'is not a valid URL');
        }
      }
      const method = o.method ?? 'POST';
      if (method !== 'POST' && method !== 'PUT') this.issue([...path, 'method'], 'must be POST or PUT');
      const headers: Record<string, string> = {};
      const rawHeaders = this.object(o.headers ?? {}, [...path, 'headers']) ?? {};
      for (const [header, headerValue] of Object.entries(rawHeaders)) {
        if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(header)) this.issue([...path, 'headers', header], 'is not a valid header name');
        const text = this.string(headerValue, [...path, 'headers', header]);
        if (text !== undefined) headers[header] = text;
      }
      const secretFile = o['secret-file'] === undefined ? undefined : this.string(o['secret-file'], [...path, 'secret-file']);
      return {
        type: 'webhook',
        name,
        url,
        method: method as 'POST' | 'PUT',
        headers,
        ...(o.body === undefined ? {} : { body: o.body }),
        ...(secretFile === undefined ? {} : { secretFile }),
        timeoutMs: this.duration(o.timeout, [...path, 'timeout']) ?? NOTIFY_DEFAULTS.timeoutMs,
        retry: this.retry(o.retry, [...path, 'retry']),
      };
    }
    this.issue([...path, 'type'], 'must be smtp or webhook');
    return undefined;
  }

  private retry(value: unknown, path: Path): DeliveryRetryPolicy {
    const retry: DeliveryRetryPolicy = { ...NOTIFY_DEFAULTS.retry };
    if (value === undefined) return retry;
    const o = this.object(value, path, ['attempts', 'initial', 'max']);
    if (o === undefined) return retry;
    if (o.attempts !== undefined) retry.attempts = this.integer(o.attempts, [...path, 'attempts'], 1, 100) ?? retry.attempts;
    retry.initialMs = this.duration(o.initial, [...path, 'initial']) ?? retry.initialMs;
    retry.maxMs = this.duration(o.max, [...path, 'max']) ?? Math.max(retry.maxMs, retry.initialMs);
    if (retry.maxMs < retry.initialMs) this.issue([...path, 'max'], 'is shorter than initial');
    return retry;
  }

  private rule(value: unknown, path: Path, targets: Obj): NotificationRule | undefined {
    const o = this.object(value, path, ['name', 'match', 'targets', 'dedupe', 'group-runs']);
    if (o === undefined) return undefined;
    const name = this.string(o.name, [...path, 'name']) ?? '';
    const rule: NotificationRule = {
      name,
      minSeverity: 'info',
      targets: this.targetNames(o.targets, [...path, 'targets'], targets),
      dedupeMs: this.duration(o.dedupe, [...path, 'dedupe']) ?? NOTIFY_DEFAULTS.dedupeMs,
      groupRuns: o['group-runs'] === undefined ? true : this.boolean(o['group-runs'], [...path, 'group-runs']),
    };
    if (o.match === undefined) return rule;
    const m = this.object(o.match, [...path, 'match'], ['types', 'min-severity', 'jobs', 'vm-tags', 'when']);
    if (m === undefined) return rule;
    if (m.types !== undefined) {
      const types = this.stringList(m.types, [...path, 'match', 'types'], false) ?? [];
      types.forEach((type, i) => {
        if (!Object.hasOwn(EVENT_TYPES, type)) this.issue([...path, 'match', 'types', i], `unknown event type (known: ${Object.keys(EVENT_TYPES).join(', ')})`);
      });
      rule.types = types as EventType[];
    }
    if (m['min-severity'] !== undefined) {
      if (!SEVERITIES.includes(m['min-severity'] as Severity)) this.issue([...path, 'match', 'min-severity'], `must be one of ${SEVERITIES.join(', ')}`);
      else rule.minSeverity = m['min-severity'] as Severity;
    }
    if (m.jobs !== undefined) rule.jobs = this.stringList(m.jobs, [...path, 'match', 'jobs'], true) ?? [];
    if (m['vm-tags'] !== undefined) rule.vmTags = this.stringList(m['vm-tags'], [...path, 'match', 'vm-tags'], true) ?? [];
    if (m.when !== undefined) {
      const when = this.window(m.when, [...path, 'match', 'when']);
      if (when !== undefined) rule.when = when;
    }
    return rule;
  }

  private window(value: unknown, path: Path): TimeWindow | undefined {
    const o = this.object(value, path, ['calendar', 'time-zone']);
    if (o === undefined) return undefined;
    const calendar = this.string(o.calendar, [...path, 'calendar']);
    const zone = o['time-zone'] === undefined ? this.defaultTimeZone : this.string(o['time-zone'], [...path, 'time-zone']);
    if (calendar === undefined || zone === undefined) return undefined;
    const schedule = this.schedule(calendar, zone, path);
    return schedule === undefined ? undefined : { calendar, timeZone: schedule.timeZone, schedule };
  }

  private summary(value: unknown, path: Path, targets: Obj): DailySummary | undefined {
    const o = this.object(value, path, ['at', 'time-zone', 'targets']);
    if (o === undefined) return undefined;
    const at = this.string(o.at, [...path, 'at']);
    const zone = o['time-zone'] === undefined ? this.defaultTimeZone : this.string(o['time-zone'], [...path, 'time-zone']);
    const names = this.targetNames(o.targets, [...path, 'targets'], targets);
    if (at === undefined || zone === undefined) return undefined;
    const schedule = this.schedule(at, zone, [...path, 'at']);
    return schedule === undefined ? undefined : { at, timeZone: schedule.timeZone, schedule, targets: names };
  }

  private schedule(text: string, zone: string, path: Path): Schedule | undefined {
    try {
      return parseSchedule(text, { timeZone: zone });
    } catch (error) {
      this.issue(path, isCofferError(error) ? error.message : String(error));
      return undefined;
    }
  }

  private targetNames(value: unknown, path: Path, targets: Obj): string[] {
    const names = this.stringList(value, path, true) ?? [];
    if (Array.isArray(value) && names.length === 0) this.issue(path, 'names no target');
    names.forEach((name, i) => {
      if (!Object.hasOwn(targets, name)) this.issue([...path, i], `no target is named ${JSON.stringify(name)}`);
    });
    return names;
  }

  private object(value: unknown, path: Path, keys?: string[]): Obj | undefined {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.issue(path, 'must be a mapping');
      return undefined;
    }
    if (keys !== undefined) {
      for (const key of Object.keys(value)) if (!keys.includes(key)) this.issue([...path, key], `unknown key (known: ${keys.join(', ')})`);
    }
    return value as Obj;
  }

  private string(value: unknown, path: Path): string | undefined {
    if (typeof value === 'string' && value.length > 0) return value;
    this.issue(path, value === undefined ? 'is required' : 'must be a non-empty string');
    return undefined;
  }

  private stringList(value: unknown, path: Path, required: boolean): string[] | undefined {
    if (value === undefined && !required) return undefined;
    if (!Array.isArray(value)) {
      this.issue(path, value === undefined ? 'is required' : 'must be a list');
      return undefined;
    }
    const out: string[] = [];
    value.forEach((item, i) => {
      const text = this.string(item, [...path, i]);
      if (text !== undefined) out.push(text);
    });
    return out;
  }

  private integer(value: unknown, path: Path, min: number, max: number): number | undefined {
    if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
    this.issue(path, `must be a whole number from ${min} to ${max}`);
    return undefined;
  }

  private boolean(value: unknown, path: Path): boolean {
    if (typeof value === 'boolean') return value;
    this.issue(path, 'must be true or false');
    return false;
  }

  private duration(value: unknown, path: Path): number | undefined {
    if (value === undefined) return undefined;
    const ms = typeof value === 'string' ? parseDuration(value) : undefined;
    if (ms === undefined) this.issue(path, 'must be a duration such as 500ms, 30s, 5m, 1h or 2d');
    return ms;
  }

  private issue(path: Path, message: string): void {
    this.issues.push({ path, message });
  }
}
