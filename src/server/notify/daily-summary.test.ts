import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSchedule } from '../../jobs/index.js';
import { summaryDue } from './daily-summary.js';

const at0700Berlin = parseSchedule('07:00', { timeZone: 'Europe/Berlin' });
const t = (iso: string) => Date.parse(iso);

/** [case, last due, now, due]. */
const CASES: [string, string, string, string | undefined][] = [
  ['before its time', '2026-11-25T06:00:00Z', '2026-11-26T05:59:59Z', undefined],
  ['at its time', '2026-11-25T06:00:00Z', '2026-11-26T06:00:00Z', '2026-11-26T06:00:00.000Z'],
  ['already sent', '2026-11-26T06:00:00Z', '2026-11-26T12:00:00Z', undefined],
  ['three days down: one summary, the latest', '2026-11-22T06:00:00Z', '2026-11-25T09:00:00Z', '2026-11-25T06:00:00.000Z'],
  ['summer time: 07:00 Berlin is 05:00 UTC', '2026-06-30T05:00:00Z', '2026-07-01T05:00:00Z', '2026-07-01T05:00:00.000Z'],
];

test('the daily summary is due at its calendar time in its zone, once, and once after downtime', () => {
  for (const [name, last, now, due] of CASES) {
    const got = summaryDue(at0700Berlin, { lastDue: t(last), now: t(now) });
    assert.equal(got === undefined ? undefined : new Date(got).toISOString(), due, name);
  }
});
