/**
 * Every job's next runs laid out on days (the browser's calendar days, starting today), for
 * the calendar of all schedules: which nights are busy, which jobs run together.
 */
import { dayKey } from '../format';

export interface JobRuns {
  job: string;
  timezone: string;
  nextRuns: readonly string[];
}

export interface CalendarDay {
  key: string;
  date: Date;
  runs: { job: string; at: string; timezone: string }[];
}

export function scheduleCalendar(jobs: readonly JobRuns[], today: Date, days: number): CalendarDay[] {
  const out: CalendarDay[] = Array.from({ length: days }, (_, i) => {
    const date = new Date(today.getFullYear(), today.getMonth(), today.getDate() + i);
    return { key: dayKey(date), date, runs: [] };
  });
  const byKey = new Map(out.map((d) => [d.key, d]));
  for (const job of jobs) for (const at of job.nextRuns) byKey.get(dayKey(new Date(at)))?.runs.push({ job: job.job, at, timezone: job.timezone });
  for (const day of out) day.runs.sort((a, b) => a.at.localeCompare(b.at) || a.job.localeCompare(b.job));
  return out;
}
