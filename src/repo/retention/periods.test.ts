import assert from 'node:assert/strict';
import { test } from 'node:test';
import { periodLabel, type RetentionPeriod } from './periods.js';

test('period labels in UTC, the first and last instant of each period, and ISO weeks across year ends', () => {
  const cases: [string, RetentionPeriod, string][] = [
    ['2026-11-24T13:00:00.000Z', 'hourly', '2026-11-24T13'],
    ['2026-11-24T13:59:59.999Z', 'hourly', '2026-11-24T13'],
    ['2026-11-24T14:00:00.000Z', 'hourly', '2026-11-24T14'],
    ['2026-11-24T00:00:00.000Z', 'daily', '2026-11-24'],
    ['2026-11-24T23:59:59.999Z', 'daily', '2026-11-24'],
    // The same instant written with an offset is the next UTC day: periods never follow the local zone.
    ['2026-11-24T23:30:00-01:00', 'daily', '2026-11-25'],
    ['2026-11-23T00:00:00.000Z', 'weekly', '2026-W48'], // Monday: the first instant of the week
    ['2026-11-29T23:59:59.999Z', 'weekly', '2026-W48'], // Sunday: the last
    ['2026-11-30T00:00:00.000Z', 'weekly', '2026-W49'],
    ['2024-12-29T12:00:00.000Z', 'weekly', '2024-W52'], // Sunday
    ['2024-12-30T00:00:00.000Z', 'weekly', '2025-W01'], // Monday of the week with 2 January 2025 (a Thursday)
    ['2025-01-05T23:59:59.999Z', 'weekly', '2025-W01'],
    ['2020-12-31T12:00:00.000Z', 'weekly', '2020-W53'], // 2020 had 53 ISO weeks
    ['2021-01-03T23:59:59.999Z', 'weekly', '2020-W53'], // a Sunday of 2021 still in 2020's last week
    ['2021-01-04T00:00:00.000Z', 'weekly', '2021-W01'],
    ['2026-01-01T00:00:00.000Z', 'weekly', '2026-W01'], // a Thursday
    ['2027-01-01T00:00:00.000Z', 'weekly', '2026-W53'], // a Friday: 2026 has 53 weeks
    ['2026-02-01T00:00:00.000Z', 'monthly', '2026-02'],
    ['2026-01-31T23:59:59.999Z', 'monthly', '2026-01'],
    ['2024-02-29T23:59:59.999Z', 'monthly', '2024-02'],
    ['2025-12-31T23:59:59.999Z', 'yearly', '2025'],
    ['2026-01-01T00:00:00.000Z', 'yearly', '2026'],
  ];
  for (const [time, period, label] of cases) assert.equal(periodLabel(period, Date.parse(time)), label, `${period} of ${time}`);
});
