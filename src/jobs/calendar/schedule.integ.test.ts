/**
 * systemd itself as the oracle: `systemd-analyze calendar --base-time=@EPOCH --iterations=N`
 * computes the next firings of the same events, in the same zones, across both daylight
 * saving transitions of 2026; Coffer's schedule must agree to the second.
 */
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { requireTools, runTool } from '../../testing/index.js';
import { parseSchedule } from './index.js';

const EVENTS = [
  'mon..fri 22:00',
  'sat *-1..7 03:00',
  '*:0/15',
  'daily',
  'weekly',
  'monthly',
  'quarterly',
  'Mon *-05~07/1',
  '*-*~1..3 12:00',
  '*-1..31/7',
  'mon..fri 8..17,22:0/15',
  '12/2:5',
  '02:30',
  '*:0/30',
  '01..03:00,30',
  'Sat,Sun 12-05 08:05:40',
  '*-02-29 12:00',
];
const ZONES = ['UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Sydney'];
/** Just before each 2026 transition of the zones above, and an ordinary day. */
const BASES = ['2026-03-07T12:00:00Z', '2026-03-28T20:00:00Z', '2026-10-24T21:00:00Z', '2026-04-04T12:00:00Z', '2026-10-03T12:00:00Z'];
const ITERATIONS = 8;

before(async () => {
  await requireTools('systemd-analyze');
  process.env.TZ = 'UTC'; // systemd-analyze prints in the process's zone
});

async function systemdFirings(events: string[], base: string): Promise<string[][]> {
  const epoch = Math.floor(Date.parse(base) / 1000);
  const out = await runTool('systemd-analyze', ['calendar', `--base-time=@${epoch}`, `--iterations=${ITERATIONS}`, ...events]);
  return out
    .split(/\n\s*\n/)
    .filter((block) => block.includes('Original form'))
    .map((block) => [...block.matchAll(/(?:Next elapse|Iter\. #\d+): \w{3} (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) UTC/g)].map((m) => `${m[1]}T${m[2]}Z`));
}

test('next firings agree with systemd-analyze, in four zones, across daylight saving transitions', async () => {
  let compared = 0;
  for (const base of BASES) {
    const texts = ZONES.flatMap((zone) => EVENTS.map((event) => `${event} ${zone}`));
    const expected = await systemdFirings(texts, base);
    assert.equal(expected.length, texts.length, 'one block per event');
    texts.forEach((text, index) => {
      const ours = parseSchedule(text, { timeZone: 'UTC' })
        .preview(new Date(base), ITERATIONS)
        .map((d) => d.toISOString().replace('.000Z', 'Z'));
      assert.deepEqual(ours, expected[index], `${text} after ${base}`);
      compared += ours.length;
    });
  }
  assert.ok(compared > 2000, `compared ${compared} firings`);
});
