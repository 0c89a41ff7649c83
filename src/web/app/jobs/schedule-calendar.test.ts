import { describe, expect, it } from 'vitest';
import { scheduleCalendar } from './schedule-calendar';

describe('scheduleCalendar', () => {
  it('puts each run on its day in order, and leaves days without runs empty', () => {
    const today = new Date(2026, 10, 23, 9, 0);
    const at = (day: number, hour: number) => new Date(2026, 10, day, hour, 0).toISOString();
    const days = scheduleCalendar(
      [
        { job: 'nightly', timezone: 'UTC', nextRuns: [at(23, 22), at(24, 22)] },
        { job: 'weekly', timezone: 'UTC', nextRuns: [at(23, 21), at(30, 21), at(7, 1)] },
      ],
      today,
      3,
    );
    expect(days.map((d) => [d.key, d.runs.map((r) => r.job)])).toEqual([
      ['2026-11-23', ['weekly', 'nightly']],
      ['2026-11-24', ['nightly']],
      ['2026-11-25', []],
    ]);
  });
});
