import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { parseSchedule } from './index.js';

/**
 * Each row: a schedule, its zone, the base instant, and the next firings, computed by hand
 * (calendar lookups) and cross-checked with `systemd-analyze calendar --base-time` where
 * systemd reads the syntax (the integ test repeats that check live).
 */
const CASES: { text: string; zone?: string; after: string; next: string[] }[] = [
  // 2026-03-01 is a Sunday.
  { text: 'mon..fri 22:00', after: '2026-03-01T00:00:00Z', next: ['2026-03-02T22:00:00Z', '2026-03-03T22:00:00Z', '2026-03-04T22:00:00Z', '2026-03-05T22:00:00Z', '2026-03-06T22:00:00Z', '2026-03-09T22:00:00Z'] },
  // First Saturday of the month at 03:00: 2026-03-07, 2026-04-04, 2026-05-02.
  { text: 'sat *-1..7 03:00', after: '2026-03-01T00:00:00Z', next: ['2026-03-07T03:00:00Z', '2026-04-04T03:00:00Z', '2026-05-02T03:00:00Z'] },
  { text: '*:0/15', after: '2026-03-01T10:07:30Z', next: ['2026-03-01T10:15:00Z', '2026-03-01T10:30:00Z', '2026-03-01T10:45:00Z', '2026-03-01T11:00:00Z'] },
  { text: 'daily', after: '2026-03-01T00:00:00Z', next: ['2026-03-02T00:00:00Z', '2026-03-03T00:00:00Z'] },
  { text: 'weekly', after: '2026-03-01T00:00:00Z', next: ['2026-03-02T00:00:00Z', '2026-03-09T00:00:00Z'] },
  { text: 'monthly', after: '2026-03-01T00:00:00Z', next: ['2026-04-01T00:00:00Z', '2026-05-01T00:00:00Z'] },
  { text: 'hourly', after: '2026-03-01T23:00:00Z', next: ['2026-03-02T00:00:00Z', '2026-03-02T01:00:00Z'] },
  { text: 'quarterly', after: '2026-03-01T00:00:00Z', next: ['2026-04-01T00:00:00Z', '2026-07-01T00:00:00Z', '2026-10-01T00:00:00Z', '2027-01-01T00:00:00Z'] },
  { text: 'Sat,Sun 08:05:40', after: '2026-03-01T00:00:00Z', next: ['2026-03-01T08:05:40Z', '2026-03-07T08:05:40Z', '2026-03-08T08:05:40Z'] },
  { text: 'Wed, Fri 17:48', after: '2026-03-01T00:00:00Z', next: ['2026-03-04T17:48:00Z', '2026-03-06T17:48:00Z', '2026-03-11T17:48:00Z'] },
  { text: 'Mon-Wed 1:2:3', after: '2026-03-01T00:00:00Z', next: ['2026-03-02T01:02:03Z', '2026-03-03T01:02:03Z', '2026-03-04T01:02:03Z', '2026-03-09T01:02:03Z'] },
  { text: '12..14:10,20,30', after: '2026-03-01T13:25:00Z', next: ['2026-03-01T13:30:00Z', '2026-03-01T14:10:00Z', '2026-03-01T14:20:00Z', '2026-03-01T14:30:00Z', '2026-03-02T12:10:00Z'] },
  { text: '2003-03-05 05:40', after: '2000-01-01T00:00:00Z', next: ['2003-03-05T05:40:00Z'] },
  { text: '12-10-15 1:2:3', after: '2000-01-01T00:00:00Z', next: ['2012-10-15T01:02:03Z'] },
  { text: '*-1..31/7', after: '2026-01-01T00:00:00Z', next: ['2026-01-08T00:00:00Z', '2026-01-15T00:00:00Z', '2026-01-22T00:00:00Z', '2026-01-29T00:00:00Z', '2026-02-01T00:00:00Z'] },
  { text: '1..10/3:00', after: '2026-03-01T00:00:00Z', next: ['2026-03-01T01:00:00Z', '2026-03-01T04:00:00Z', '2026-03-01T07:00:00Z', '2026-03-01T10:00:00Z', '2026-03-02T01:00:00Z'] },
  { text: 'mon *-1..7/2', after: '2026-03-01T00:00:00Z', next: ['2026-06-01T00:00:00Z', '2026-08-03T00:00:00Z', '2026-09-07T00:00:00Z'] },
  // Days from the end of the month: the last Monday in May; the last three days.
  { text: 'Mon *-05~07/1', after: '2026-01-01T00:00:00Z', next: ['2026-05-25T00:00:00Z', '2027-05-31T00:00:00Z', '2028-05-29T00:00:00Z'] },
  { text: '*-*~1..3', after: '2026-01-01T00:00:00Z', next: ['2026-01-29T00:00:00Z', '2026-01-30T00:00:00Z', '2026-01-31T00:00:00Z', '2026-02-26T00:00:00Z'] },
  { text: '*-02~01', after: '2027-03-01T00:00:00Z', next: ['2028-02-29T00:00:00Z', '2029-02-28T00:00:00Z'] },
  // Leap days only: 2028, 2032.
  { text: '*-02-29 12:00', after: '2026-01-01T00:00:00Z', next: ['2028-02-29T12:00:00Z', '2032-02-29T12:00:00Z'] },
  // Proxmox: minutes alone, `*/n`.
  { text: '*/5', after: '2026-03-01T10:03:00Z', next: ['2026-03-01T10:05:00Z', '2026-03-01T10:10:00Z'] },
  { text: 'mon..wed 30/10', after: '2026-03-02T10:45:00Z', next: ['2026-03-02T10:50:00Z', '2026-03-02T11:30:00Z', '2026-03-02T11:40:00Z'] },
  { text: 'fri 12..13:5/20', after: '2026-03-01T00:00:00Z', next: ['2026-03-06T12:05:00Z', '2026-03-06T12:25:00Z', '2026-03-06T12:45:00Z', '2026-03-06T13:05:00Z', '2026-03-06T13:25:00Z', '2026-03-06T13:45:00Z', '2026-03-13T12:05:00Z'] },
  // Time zones: 22:00 in Berlin is 21:00 UTC in winter, 20:00 UTC in summer.
  { text: 'mon..fri 22:00', zone: 'Europe/Berlin', after: '2026-03-26T00:00:00Z', next: ['2026-03-26T21:00:00Z', '2026-03-27T21:00:00Z', '2026-03-30T20:00:00Z'] },
  { text: 'daily America/New_York', zone: 'UTC', after: '2026-07-01T00:00:00Z', next: ['2026-07-01T04:00:00Z', '2026-07-02T04:00:00Z'] },
  // Cron: minute hour dom month dow.
  { text: '0 22 * * 1-5', after: '2026-03-06T22:00:00Z', next: ['2026-03-09T22:00:00Z', '2026-03-10T22:00:00Z'] },
  { text: '*/20 1-2 * * *', after: '2026-03-01T00:00:00Z', next: ['2026-03-01T01:00:00Z', '2026-03-01T01:20:00Z', '2026-03-01T01:40:00Z', '2026-03-01T02:00:00Z', '2026-03-01T02:20:00Z', '2026-03-01T02:40:00Z', '2026-03-02T01:00:00Z'] },
  // Both day fields restricted: the 1st OR a Monday (2026-01-01 is a Thursday).
  { text: '0 3 1 * mon', after: '2026-01-01T00:00:00Z', next: ['2026-01-01T03:00:00Z', '2026-01-05T03:00:00Z', '2026-01-12T03:00:00Z', '2026-01-19T03:00:00Z', '2026-01-26T03:00:00Z', '2026-02-01T03:00:00Z', '2026-02-02T03:00:00Z'] },
  // Day of week `*`: only the day of the month counts.
  { text: '30 4 15 jan,jul *', after: '2026-01-01T00:00:00Z', next: ['2026-01-15T04:30:00Z', '2026-07-15T04:30:00Z', '2027-01-15T04:30:00Z'] },
  { text: '0 0 * * 7', after: '2026-03-01T00:00:00Z', next: ['2026-03-08T00:00:00Z'] },
  { text: '@daily', after: '2026-03-01T00:00:00Z', next: ['2026-03-02T00:00:00Z'] },
];

test('next firings match hand-computed expectations (calendar events and cron)', () => {
  for (const row of CASES) {
    const schedule = parseSchedule(row.text, { timeZone: row.zone ?? 'UTC' });
    const got = schedule.preview(new Date(row.after), row.next.length).map((d) => d.toISOString().replace('.000Z', 'Z'));
    assert.deepEqual(got, row.next, `${row.text} after ${row.after}`);
  }
});

test('next() is strictly after the instant given, to the second', () => {
  const schedule = parseSchedule('*:*:0/10', { timeZone: 'UTC' });
  assert.equal(schedule.next(new Date('2026-03-01T10:00:00.000Z'))?.toISOString(), '2026-03-01T10:00:10.000Z');
  assert.equal(schedule.next(new Date('2026-03-01T10:00:09.999Z'))?.toISOString(), '2026-03-01T10:00:10.000Z');
});

test('an event that never happens ends with undefined, quickly', () => {
  const started = performance.now();
  for (const text of ['*-02-30', '*-04-31 12:00', '2020-01-01', '0 0 31 2 *', '0 0 30 feb *']) {
    const schedule = parseSchedule(text, { timeZone: 'Europe/Berlin' });
    assert.equal(schedule.next(new Date('2026-01-01T00:00:00Z')), undefined, text);
    assert.deepEqual(schedule.preview(new Date('2026-01-01T00:00:00Z'), 5), [], text);
  }
  // The last year a schedule can name is 2199: the search ends there.
  assert.equal(parseSchedule('*-12-31 23:59:59', { timeZone: 'UTC' }).next(new Date('2199-12-31T23:59:59Z')), undefined);
  assert.ok(performance.now() - started < 2000, 'bounded search');
});

/** Europe/Berlin springs forward on 2026-03-29 (02:00 CET → 03:00 CEST) and falls back on 2026-10-25 (03:00 CEST → 02:00 CET). */
test('daylight saving time: a local time that does not exist is skipped that day (systemd)', () => {
  const daily = parseSchedule('02:30', { timeZone: 'Europe/Berlin' });
  assert.deepEqual(
    daily.preview(new Date('2026-03-27T12:00:00Z'), 3).map((d) => d.toISOString()),
    ['2026-03-28T01:30:00.000Z', '2026-03-30T00:30:00.000Z', '2026-03-31T00:30:00.000Z'],
  );
  // A repeating event continues right after the gap.
  const halfHourly = parseSchedule('*:0/30', { timeZone: 'Europe/Berlin' });
  assert.deepEqual(
    halfHourly.preview(new Date('2026-03-29T00:15:00Z'), 3).map((d) => d.toISOString()),
    ['2026-03-29T00:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-29T01:30:00.000Z'], // 01:30 CET, 03:00 CEST, 03:30 CEST
  );
});

test('daylight saving time: a local time that happens twice fires once, at its first occurrence (systemd)', () => {
  const daily = parseSchedule('02:30', { timeZone: 'Europe/Berlin' });
  assert.deepEqual(
    daily.preview(new Date('2026-10-24T12:00:00Z'), 3).map((d) => d.toISOString()),
    ['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z', '2026-10-27T01:30:00.000Z'], // 02:30 CEST, then CET
  );
  const halfHourly = parseSchedule('*:0/30', { timeZone: 'Europe/Berlin' });
  assert.deepEqual(
    halfHourly.preview(new Date('2026-10-24T23:45:00Z'), 4).map((d) => d.toISOString()),
    ['2026-10-25T00:00:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-25T02:00:00.000Z', '2026-10-25T02:30:00.000Z'], // 02:00, 02:30 CEST, 03:00, 03:30 CET
  );
  // From inside the repeated hour (02:10 CET), the rest of that hour's wall times fire as CET.
  assert.equal(halfHourly.next(new Date('2026-10-25T01:10:00Z'))?.toISOString(), '2026-10-25T01:30:00.000Z');
});

test('bad input: E_USAGE with the position of the part at fault', () => {
  const cases: [string, RegExp][] = [
    ['mon..fri 25:00', /position 10: hour 25 is outside 0\.\.23/],
    ['', /position 1: the schedule is empty/],
    ['feb 30', /position 1: "feb" is not a weekday/],
    ['sat..mon 03:00', /position 1: the range "sat\.\.mon" ends before it starts/],
    ['*-13-01', /position 3: month 13 is outside 1\.\.12/],
    ['*-*-1..x', /position 5: "x" is not a valid day of the month/],
    ['*:0/0', /position 3: the step "\/0" must be a whole number of at least 1/],
    ['10..5:00', /position 1: the range "10\.\.5" ends before it starts/],
    ['2300-01-01', /position 1: year 2300 is outside 1970\.\.2199/],
    ['12:00 *-*-*', /position 7: .*date must come before the time/],
    ['daily 12:00', /position 7: nothing may follow "daily"/],
    ['1:2:3:4', /not a time/],
    ['05:40:23.42', /fractions of a second are not supported/],
    ['60 * * * *', /position 1: minute 60 is outside 0\.\.59/],
    ['0 0 * foo *', /position 7: "foo" is not a valid month/],
    ['@reboot', /unknown macro/],
    ['mon..fri 22:00 Mars/Olympus', /unknown time zone "Mars\/Olympus"/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseSchedule(text, { timeZone: 'UTC' }), (error: unknown) => isCofferError(error, 'E_USAGE') && message.test(error.message), text);
  }
  assert.throws(() => parseSchedule('daily', { timeZone: 'Nowhere/Town' }), (error: unknown) => isCofferError(error, 'E_USAGE'));
});

test('the zone written in the event wins over the option; the schedule reports it', () => {
  const schedule = parseSchedule('daily Asia/Tokyo', { timeZone: 'Europe/Berlin' });
  assert.equal(schedule.timeZone, 'Asia/Tokyo');
  assert.equal(schedule.syntax, 'calendar');
  assert.equal(schedule.next(new Date('2026-03-01T00:00:00Z'))?.toISOString(), '2026-03-01T15:00:00.000Z');
  assert.equal(parseSchedule('0 0 * * *', { timeZone: 'UTC' }).syntax, 'cron');
});
