import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { parseKeepCount, parseRetentionDuration, subtractDuration, validatePolicy, type RetentionPolicy } from './policy.js';

test('durations: years, months, days and hours in that order, normalised', () => {
  assert.deepEqual(parseRetentionDuration('1y5m7d2h'), { years: 1, months: 5, days: 7, hours: 2, text: '1y5m7d2h' });
  assert.deepEqual(parseRetentionDuration('36h'), { years: 0, months: 0, days: 0, hours: 36, text: '36h' });
  assert.deepEqual(parseRetentionDuration('0y7d'), { years: 0, months: 0, days: 7, hours: 0, text: '7d' });
  for (const bad of ['', '7', '0d', '2w', '1d1y', '7d7d', '-1d', '1.5d', ' 7d', '7D']) {
    assert.throws(() => parseRetentionDuration(bad), (e) => isCofferError(e, 'E_USAGE'), JSON.stringify(bad));
  }
  // Each says what is wrong with it (a count out of range read as "not a duration").
  const why = (text: string) => {
    try {
      parseRetentionDuration(text);
    } catch (error) {
      return (error as Error).message;
    }
    return '';
  };
  assert.match(why('99999999999y'), /is too long a duration: at most 9999 years/);
  assert.match(why('1000000d'), /at most 999999 days/);
  assert.match(why('0d'), /is a duration of zero/);
  assert.match(why('2w'), /is not a duration/);
  assert.deepEqual(parseRetentionDuration('9999y'), { years: 9999, months: 0, days: 0, hours: 0, text: '9999y' });
});

test('durations are subtracted in UTC calendar arithmetic, as Go\'s AddDate', () => {
  const minus = (from: string, duration: string) => new Date(subtractDuration(Date.parse(from), parseRetentionDuration(duration))).toISOString();
  assert.equal(minus('2026-11-24T12:00:00.000Z', '7d'), '2026-11-17T12:00:00.000Z');
  assert.equal(minus('2026-03-31T00:00:00.000Z', '1m'), '2026-03-03T00:00:00.000Z'); // 31 February is 3 March
  assert.equal(minus('2024-02-29T06:00:00.000Z', '1y'), '2023-03-01T06:00:00.000Z');
  assert.equal(minus('2026-01-01T01:00:00.000Z', '2h'), '2025-12-31T23:00:00.000Z');
  assert.equal(minus('2026-11-24T12:00:00.000Z', '1y5m7d2h'), '2025-06-17T10:00:00.000Z');
});

test('counts: whole numbers or unlimited', () => {
  assert.equal(parseKeepCount('0', '--keep-last'), 0);
  assert.equal(parseKeepCount('12', '--keep-last'), 12);
  assert.equal(parseKeepCount('unlimited', '--keep-daily'), -1);
  for (const bad of ['', '-1', '1.5', 'all', '01', ' 3', '9999999999']) {
    assert.throws(() => parseKeepCount(bad, '--keep-daily'), (e) => isCofferError(e, 'E_USAGE') && e.message.includes('--keep-daily'), JSON.stringify(bad));
  }
});

test('a policy that keeps nothing, or a malformed one, is refused', () => {
  const refused: RetentionPolicy[] = [{}, { last: 0, daily: 0 }, { tags: [] }, { last: -2 }, { daily: 1.5 }, { daily: 1, tags: [[]] }, { weekly: 2, tags: [['']] }];
  for (const policy of refused) assert.throws(() => validatePolicy(policy), (e) => isCofferError(e, 'E_USAGE'), JSON.stringify(policy));
  for (const policy of [{ last: 1 }, { yearly: -1 }, { within: parseRetentionDuration('1h') }, { tags: [['x']] }]) validatePolicy(policy);
});
