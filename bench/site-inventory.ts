/**
 * The site of issue #8's size that the planner and service benchmarks share: 600 VMs on 160
 * hosts, 16 datastores, 3 repositories, 6 jobs, last successes up to two weeks old, 3 % that
 * missed the last window, expected durations of 3–63 minutes. Seeded: the same site each run.
 *
 * @module
 */
import type { PendingTask } from '../src/jobs/index.js';

export const SITE_VMS = 600;
export const SITE_HOSTS = 160;

/** The site's VMs as tasks waiting for tonight's run. */
export function siteInventory(): PendingTask[] {
  let seed = 1;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const now = Date.UTC(2026, 2, 2, 22);
  return Array.from({ length: SITE_VMS }, (_, i) => ({
    id: `vm${i}`,
    host: `host${Math.floor(next() * SITE_HOSTS)}`,
    datastore: `ds${i % 16}`,
    repository: `repo${i % 3}`,
    job: `job${i % 6}`,
    lastSuccess: new Date(now - Math.floor(next() * 14) * 86_400_000),
    missedLastWindow: next() < 0.03,
    expectedDurationMs: Math.round((3 + next() * 60) * 60_000),
  }));
}
