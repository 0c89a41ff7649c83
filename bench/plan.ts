/**
 * `node dist/bench/plan.js`: how long the planner takes on a site of issue #8's size, 600 VMs
 * on 160 hosts (target: planning under 1 s). Times the first plan of a night (nothing
 * running), a re-plan when one task ends (the common case), the forecast of the whole night,
 * and the next-firing computation of a schedule. Not part of `npm run bench` (yet: the server
 * bench will add scheduler CPU per task and API latency). No repository, no I/O.
 *
 * @module
 */
import { forecastRun, parseSchedule, planStarts, type ConcurrencyLimits } from '../src/jobs/index.js';
import { siteInventory, SITE_HOSTS, SITE_VMS } from './site-inventory.js';

const VMS = SITE_VMS;
const HOSTS = SITE_HOSTS;
const REPEAT = 50;


function time(label: string, fn: () => unknown): void {
  fn(); // warm up
  const start = performance.now();
  for (let i = 0; i < REPEAT; i++) fn();
  const ms = (performance.now() - start) / REPEAT;
  process.stdout.write(`${label.padEnd(52)} ${ms.toFixed(3).padStart(9)} ms\n`);
}

const vms = siteInventory();
const limits: ConcurrencyLimits = { global: 48, datastore: { default: 6 }, repository: { default: 24 } };
const start = new Date(Date.UTC(2026, 2, 2, 22));
const windowEnd = new Date(start.getTime() + 6.5 * 3_600_000);
const windowEnds = Object.fromEntries([0, 1, 2, 3, 4, 5].map((j) => [`job${j}`, windowEnd]));
const first = planStarts(vms, { running: [], limits, now: start, windowEnds });
const running = first.start.slice(1);
const waiting = first.waiting.map((w) => w.task);

process.stdout.write(`planner: ${VMS} VMs on ${HOSTS} hosts, mean of ${REPEAT} runs\n`);
time('plan the night (nothing running)', () => planStarts(vms, { running: [], limits, now: start, windowEnds }));
time(`re-plan after one task ends (${running.length} running)`, () => planStarts(waiting, { running, limits, now: start, windowEnds }));
const forecast = forecastRun(vms, { limits, start, windowEnds, defaultDurationMs: 3_600_000 });
time(`forecast the night (${forecast.willNotStart.length} will not start)`, () => forecastRun(vms, { limits, start, windowEnds, defaultDurationMs: 3_600_000 }));
const schedule = parseSchedule('mon..fri 22:00', { timeZone: 'Europe/Berlin' });
time('600 next firings of "mon..fri 22:00 Europe/Berlin"', () => {
  for (let i = 0; i < VMS; i++) schedule.next(start);
});
