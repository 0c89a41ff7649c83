/**
 * The calendar periods a retention policy counts in, always in UTC: a repository is read by
 * hosts in many time zones (and a server applies policies on a schedule), and the same
 * repository must give the same answer everywhere. Manifests record capture times in UTC
 * too. Each period is named by a label that sorts and compares as a string:
 *
 * | period  | label               | example          |
 * |---------|---------------------|------------------|
 * | hourly  | `YYYY-MM-DDTHH`     | `2026-11-24T13`  |
 * | daily   | `YYYY-MM-DD`        | `2026-11-24`     |
 * | weekly  | `GGGG-Www` (ISO 8601 week-numbering year and week, weeks start on Monday; the week holding the year's first Thursday is week 1) | `2026-W48`, `2020-W53`, `2025-W01` for 2024-12-30 |
 * | monthly | `YYYY-MM`           | `2026-11`        |
 * | yearly  | `YYYY`              | `2026`           |
 */

/** The periods a policy can keep one snapshot of. */
export type RetentionPeriod = 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';

export const RETENTION_PERIODS: readonly RetentionPeriod[] = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'];

const DAY_MS = 86_400_000;

const pad = (value: number, width = 2): string => String(value).padStart(width, '0');

/** The ISO 8601 week-numbering year and week (1..53) of an instant, in UTC. */
export function isoWeek(ms: number): { year: number; week: number } {
  const date = new Date(ms);
  const dayIndex = (date.getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  const midnight = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate());
  // The Thursday of the same week decides the year (ISO 8601: the week with the year's first Thursday is week 1).
  const thursday = new Date(midnight + (3 - dayIndex) * DAY_MS);
  const year = thursday.getUTCFullYear();
  const januaryFirst = Date.UTC(year, 0, 1);
  const week = Math.floor((thursday.getTime() - januaryFirst) / DAY_MS / 7) + 1;
  return { year, week };
}

/** The label of the period of `kind` holding the instant `ms` (milliseconds since the epoch). */
export function periodLabel(kind: RetentionPeriod, ms: number): string {
  const date = new Date(ms);
  const year = pad(date.getUTCFullYear(), 4);
  const month = pad(date.getUTCMonth() + 1);
  const day = pad(date.getUTCDate());
  switch (kind) {
    case 'hourly':
      return `${year}-${month}-${day}T${pad(date.getUTCHours())}`;
    case 'daily':
      return `${year}-${month}-${day}`;
    case 'weekly': {
      const { year: weekYear, week } = isoWeek(ms);
      return `${pad(weekYear, 4)}-W${pad(week)}`;
    }
    case 'monthly':
      return `${year}-${month}`;
    case 'yearly':
      return year;
  }
}
