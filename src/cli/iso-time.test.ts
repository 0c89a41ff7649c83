/** parseIsoTime: what `backup --time` takes, strictly, and what JavaScript's Date would have guessed. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCofferError } from '../errors/index.js';
import { parseIsoTime } from './iso-time.js';

test('ISO 8601 times with a zone, and a bare date (midnight UTC)', () => {
  const cases: [string, string][] = [
    ['2026-11-29T08:30:00Z', '2026-11-29T08:30:00.000Z'],
    ['2026-11-29T08:30Z', '2026-11-29T08:30:00.000Z'],
    ['2026-11-29 08:30:15.25z', '2026-11-29T08:30:15.250Z'],
    ['2026-11-29T09:30:00+01:00', '2026-11-29T08:30:00.000Z'],
    ['2026-11-29T03:00:00-0530', '2026-11-29T08:30:00.000Z'],
    ['2024-02-29', '2024-02-29T00:00:00.000Z'],
    ['2026-12-31T23:59:59.999999999Z', '2026-12-31T23:59:59.999Z'],
  ];
  for (const [given, expected] of cases) assert.equal(parseIsoTime(given, '--time').toISOString(), expected, given);
});

test('what Date would guess is refused with the option named: days that do not exist, no zone, other formats', () => {
  const refused: [string, RegExp][] = [
    ['2026-02-30', /there is no day 30 in month 2 of 2026/],
    ['2025-02-29', /there is no day 29 in month 2 of 2025/],
    ['2026-13-01', /no day 1 in month 13/],
    ['2026-11-29T08:30:00', /a time of day needs its zone/],
    ['2026-11-29T24:00:00Z', /out of range/],
    ['2026-11-29T08:60Z', /out of range/],
    ['2026-11-29T08:30+25:00', /zone offset is out of range/],
    ['Sun, 29 Nov 2026 08:30:00 GMT', /not an ISO 8601 date and time/],
    ['1', /not an ISO 8601/],
    ['noon', /not an ISO 8601/],
    ['', /not an ISO 8601/],
  ];
  for (const [given, message] of refused) {
    assert.throws(() => parseIsoTime(given, '--time'), (error) => isCofferError(error, 'E_USAGE') && error.message.startsWith(`--time ${given}:`) && message.test(error.message), given);
  }
});
