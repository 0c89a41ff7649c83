import { CofferError } from '../../errors/index.js';
import type { RetentionPeriod } from './periods.js';

/** A count in a policy: how many to keep, or {@link UNLIMITED}. */
export type KeepCount = number;

/** A count that keeps every period (restic's `unlimited`). */
export const UNLIMITED: KeepCount = -1;

/**
 * A calendar duration such as `1y5m7d2h`, subtracted field by field from the newest
 * snapshot's time in UTC (so `1m` before 31 March is 3 March, as Go's `AddDate` and
 * JavaScript's `Date` both normalise a 31 February).
 */
export interface RetentionDuration {
  years: number;
  months: number;
  days: number;
  hours: number;
  /** As the user wrote it, normalised (`1y5m7d2h`), for reasons and reports. */
  text: string;
}

/**
 * What to keep of each VM's snapshots (restic's `forget --keep-*` semantics, see
 * docs/retention.md). A count of 0 or undefined keeps nothing by that rule; -1 is unlimited.
 */
export interface RetentionPolicy {
  /** The newest N snapshots. */
  last?: KeepCount;
  /** The newest snapshot of each of the newest N hours (days, ISO weeks, months, years) that have snapshots. */
  hourly?: KeepCount;
  daily?: KeepCount;
  weekly?: KeepCount;
  monthly?: KeepCount;
  yearly?: KeepCount;
  /** Every snapshot newer than this, counted back from the VM's newest snapshot. */
  within?: RetentionDuration;
  /** Every snapshot that has all the tags of any one of these lists. */
  tags?: string[][];
}

/** The count of a period in a policy (0 when absent). */
export function periodCount(policy: RetentionPolicy, period: RetentionPeriod): KeepCount {
  return policy[period] ?? 0;
}

/** True when the policy keeps something by at least one rule (an empty policy is refused). */
export function policyKeepsSomething(policy: RetentionPolicy): boolean {
  const counts = [policy.last, policy.hourly, policy.daily, policy.weekly, policy.monthly, policy.yearly];
  return counts.some((count) => count !== undefined && count !== 0) || policy.within !== undefined || (policy.tags?.length ?? 0) > 0;
}

/**
 * Checks a policy: counts are integers ≥ -1, tag lists are not empty, and it keeps something
 * (like restic, a policy that keeps nothing is an error: never remove everything by accident).
 * Throws `E_USAGE`.
 */
export function validatePolicy(policy: RetentionPolicy): void {
  for (const [name, count] of Object.entries({ last: policy.last, hourly: policy.hourly, daily: policy.daily, weekly: policy.weekly, monthly: policy.monthly, yearly: policy.yearly })) {
    if (count !== undefined && (!Number.isSafeInteger(count) || count < UNLIMITED)) {
      throw new CofferError('E_USAGE', `keep-${name} must be a whole number of snapshots or 'unlimited', not ${count}`);
    }
  }
  for (const list of policy.tags ?? []) {
    if (list.length === 0 || list.some((tag) => tag === '')) throw new CofferError('E_USAGE', 'keep-tag needs a tag (or several, comma-separated)');
  }
  if (!policyKeepsSomething(policy)) {
    throw new CofferError('E_USAGE', 'the policy keeps nothing: give at least one --keep-* option with a count other than 0');
  }
}

/** Parses a `--keep-*` count: a whole number or `unlimited`. Throws `E_USAGE`. */
export function parseKeepCount(text: string, option: string): KeepCount {
  if (text === 'unlimited') return UNLIMITED;
  if (!/^(0|[1-9]\d{0,8})$/.test(text)) throw new CofferError('E_USAGE', `${option} takes a number of snapshots or 'unlimited', not ${JSON.stringify(text)}`);
  return Number(text);
}

const DURATION = /^(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)d)?(?:(\d+)h)?$/;

/** The largest count of each unit (about 10,000 years each: beyond them dates stop meaning anything). */
const DURATION_LIMITS = [
  { unit: 'years', max: 9999 },
  { unit: 'months', max: 99_999 },
  { unit: 'days', max: 999_999 },
  { unit: 'hours', max: 9_999_999 },
] as const;

/**
 * Parses a duration like restic's `--keep-within`: years `y`, months `m`, days `d` and hours
 * `h`, in that order, each at most once (`1y5m7d2h`, `36h`, `2w` is not one). Throws `E_USAGE`
 * saying what is wrong: not a duration, zero, or longer than Coffer counts.
 */
export function parseRetentionDuration(text: string): RetentionDuration {
  const match = DURATION.exec(text);
  if (match === null || text === '') {
    throw new CofferError('E_USAGE', `${JSON.stringify(text)} is not a duration: use years, months, days and hours, e.g. 7d, 36h or 1y6m`);
  }
  const [years, months, days, hours] = match.slice(1).map((part) => Number(part ?? 0)) as [number, number, number, number];
  for (const [i, count] of [years, months, days, hours].entries()) {
    const limit = DURATION_LIMITS[i] as (typeof DURATION_LIMITS)[number];
    if (count > limit.max) throw new CofferError('E_USAGE', `${JSON.stringify(text)} is too long a duration: at most ${limit.max} ${limit.unit}`);
  }
  if (years + months + days + hours === 0) throw new CofferError('E_USAGE', `${JSON.stringify(text)} is a duration of zero: give one above zero, e.g. 7d`);
  const text_ = `${years ? `${years}y` : ''}${months ? `${months}m` : ''}${days ? `${days}d` : ''}${hours ? `${hours}h` : ''}`;
  return { years, months, days, hours, text: text_ };
}

/** The instant `duration` before `ms`, in UTC calendar arithmetic. */
export function subtractDuration(ms: number, duration: RetentionDuration): number {
  const date = new Date(ms);
  date.setUTCFullYear(date.getUTCFullYear() - duration.years, date.getUTCMonth() - duration.months, date.getUTCDate() - duration.days);
  date.setUTCHours(date.getUTCHours() - duration.hours);
  return date.getTime();
}
