/**
 * The notifications section of the server's configuration, as the notifier uses it: checked,
 * durations in ms, schedules compiled. The YAML shape (kebab-case keys) is documented in
 * docs/notifications.md and declared in notification-config-schema.ts;
 * validate-notification-config.ts turns one into the other.
 */
import type { Schedule } from '../../jobs/index.js';
import type { EventType, Severity } from './event.js';

/** How often and how patiently a target is retried: attempt n waits initial × 2^(n-1), at most max. */
export interface DeliveryRetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  initialMs: number;
  maxMs: number;
}

/** How the SMTP connection is protected: plain, upgraded with STARTTLS (required), or TLS from the start. */
export type SmtpTlsMode = 'none' | 'starttls' | 'tls';

export interface SmtpTarget {
  type: 'smtp';
  name: string;
  host: string;
  port: number;
  tls: SmtpTlsMode;
  /** Check the server's certificate (default true). */
  tlsVerify: boolean;
  user?: string;
  /** The file holding the password: the secret itself is never in the configuration. */
  passwordFile?: string;
  from: string;
  to: string[];
  timeoutMs: number;
  retry: DeliveryRetryPolicy;
}

export interface WebhookTarget {
  type: 'webhook';
  name: string;
  url: string;
  method: 'POST' | 'PUT';
  headers: Record<string, string>;
  /** The JSON body template (render-template.ts); the whole event when missing. */
  body?: unknown;
  /** The file holding the HMAC-SHA256 key that signs each body (header `X-Coffer-Signature-256`). */
  secretFile?: string;
  timeoutMs: number;
  retry: DeliveryRetryPolicy;
}

export type NotificationTarget = SmtpTarget | WebhookTarget;

/** A calendar event read in a time zone: the minutes it matches are the window. */
export interface TimeWindow {
  calendar: string;
  timeZone: string;
  schedule: Schedule;
}

export interface NotificationRule {
  name: string;
  /** The event types it takes; every type when missing. */
  types?: EventType[];
  minSeverity: Severity;
  /** Job name globs; when set, events without a job do not match. */
  jobs?: string[];
  /** When set, the event (or one VM of the run) must carry one of these tags. */
  vmTags?: string[];
  /** When set, events outside the window are dropped by this rule. */
  when?: TimeWindow;
  targets: string[];
  /** Identical messages (same rule, target, type, job, VM and summary) inside this window are sent once; 0 = off. */
  dedupeMs: number;
  /** Fold a run's VM events into its `job.finished` message (default true). */
  groupRuns: boolean;
}

export interface DailySummary {
  /** The calendar event it is sent at, e.g. `07:00` or `mon..fri 07:30`. */
  at: string;
  timeZone: string;
  schedule: Schedule;
  targets: string[];
}

export interface NotificationConfig {
  targets: Map<string, NotificationTarget>;
  rules: NotificationRule[];
  dailySummary?: DailySummary;
  /** How long recorded events are kept (days). */
  historyDays: number;
}

/** Defaults, each with its reason. */
export const NOTIFY_DEFAULTS = {
  /** 10 attempts from 30 s doubling to at most 1 h: a mail server down for ~5 h still gets the mail. */
  retry: { attempts: 10, initialMs: 30_000, maxMs: 3_600_000 } satisfies DeliveryRetryPolicy,
  /** Long enough for a slow mail relay, short enough that a dead one never holds the queue. */
  timeoutMs: 30_000,
  /** A month and a bit: the daily summary needs a day, a monthly report a month. */
  historyDays: 35,
  /** Off: every event is its own message unless a rule asks (`dedupe: 1d` for a repeated `disk-space.low`). */
  dedupeMs: 0,
} as const;
