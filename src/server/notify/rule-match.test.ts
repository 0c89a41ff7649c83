import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NotificationRule } from './notification-config.js';
import { ruleMatches, type MatchSubject } from './rule-match.js';
import { parseNotificationConfig } from './validate-notification-config.js';

function rule(match: Record<string, unknown>): NotificationRule {
  const config = parseNotificationConfig({ targets: { t: { type: 'webhook', url: 'http://x/' } }, rules: [{ name: 'r', match, targets: ['t'] }] });
  return config.rules[0] as NotificationRule;
}

const base: MatchSubject = { type: 'vm.failed', severity: 'error', job: 'nightly-db', vmTags: ['prod', 'db'], at: Date.parse('2026-11-30T09:30:00Z') };

/** [case, match, subject changes, matches]. */
const CASES: [string, Record<string, unknown>, Partial<MatchSubject>, boolean][] = [
  ['no match: everything', {}, {}, true],
  ['type listed', { types: ['vm.failed', 'job.finished'] }, {}, true],
  ['type not listed', { types: ['job.finished'] }, {}, false],
  ['severity at the minimum', { 'min-severity': 'error' }, {}, true],
  ['severity above the minimum', { 'min-severity': 'warning' }, { severity: 'critical' }, true],
  ['severity below the minimum', { 'min-severity': 'error' }, { severity: 'warning' }, false],
  ['job glob', { jobs: ['nightly-*'] }, {}, true],
  ['job glob with ?', { jobs: ['nightly-d?'] }, {}, true],
  ['job glob matches the whole name', { jobs: ['nightly'] }, {}, false],
  ['jobs set, event without a job', { jobs: ['*'] }, { job: undefined }, false],
  ['a glob with regex characters is literal', { jobs: ['a.c'] }, { job: 'abc' }, false],
  ['one of the tags', { 'vm-tags': ['test', 'db'] }, {}, true],
  ['none of the tags', { 'vm-tags': ['test'] }, {}, false],
  ['Monday 10:30 Berlin in mon..fri 08..17:*', { when: { calendar: 'mon..fri 08..17:*', 'time-zone': 'Europe/Berlin' } }, {}, true],
  ['Monday 07:59:59 Berlin', { when: { calendar: 'mon..fri 08..17:*', 'time-zone': 'Europe/Berlin' } }, { at: Date.parse('2026-11-30T06:59:59Z') }, false],
  ['Monday 18:00 Berlin', { when: { calendar: 'mon..fri 08..17:*', 'time-zone': 'Europe/Berlin' } }, { at: Date.parse('2026-11-30T17:00:00Z') }, false],
  ['Sunday', { when: { calendar: 'mon..fri 08..17:*', 'time-zone': 'Europe/Berlin' } }, { at: Date.parse('2026-11-29T10:00:00Z') }, false],
  ['a night window in UTC', { when: { calendar: '22,23,00..05:*' } }, { at: Date.parse('2026-11-30T23:15:42Z') }, true],
  ['summer time: 08:00 Berlin is 06:00 UTC', { when: { calendar: '08..17:*', 'time-zone': 'Europe/Berlin' } }, { at: Date.parse('2026-07-01T06:00:00Z') }, true],
  ['all conditions, one fails', { types: ['vm.failed'], 'min-severity': 'error', jobs: ['nightly-*'], 'vm-tags': ['web'] }, {}, false],
];

test('rules match by type, severity, job glob, VM tag and time-of-day window', () => {
  for (const [name, match, change, expected] of CASES) {
    assert.equal(ruleMatches(rule(match), { ...base, ...change }), expected, name);
  }
});
