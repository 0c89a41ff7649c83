/**
 * Whether a rule takes an event: its type, severity, job, VM tags and the time of day, all of
 * which must match (a rule with no `match` takes everything).
 */
import { severityRank, type EventType, type Severity } from './event.js';
import { matchesGlob } from './glob.js';
import type { NotificationRule, TimeWindow } from './notification-config.js';

/** What a rule looks at. For a run's `job.finished`, severity and tags cover the run's VMs too. */
export interface MatchSubject {
  type: EventType;
  severity: Severity;
  job?: string;
  vmTags: readonly string[];
  /** When it happened, ms since the epoch. */
  at: number;
}

/** True when `rule` takes `subject`. */
export function ruleMatches(rule: NotificationRule, subject: MatchSubject): boolean {
  if (rule.types !== undefined && !rule.types.includes(subject.type)) return false;
  if (severityRank(subject.severity) < severityRank(rule.minSeverity)) return false;
  if (rule.jobs !== undefined) {
    const job = subject.job;
    if (job === undefined || !rule.jobs.some((glob) => matchesGlob(glob, job))) return false;
  }
  if (rule.vmTags !== undefined && !rule.vmTags.some((tag) => subject.vmTags.includes(tag))) return false;
  if (rule.when !== undefined && !inWindow(rule.when, subject.at)) return false;
  return true;
}

const MINUTE_MS = 60_000;

/**
 * True when the minute holding `at` is one the window's calendar event matches, read in its
 * time zone: `mon..fri 08..17:*` is every minute from 08:00 to 17:59 on weekdays (a calendar
 * event without seconds fires at :00, so each matching minute fires exactly at its start).
 */
export function inWindow(window: TimeWindow, at: number): boolean {
  const minute = Math.floor(at / MINUTE_MS) * MINUTE_MS;
  return window.schedule.next(new Date(minute - 1000))?.getTime() === minute;
}
