import assert from 'node:assert/strict';
import { test } from 'node:test';
import { predictNight, workersNeeded, type NightInputs } from './planning-model.js';

const GB = 1e9;
const TB = 1e12;
const MB = 1e6;

/** The article's site (docs/scale.md states where each figure comes from). */
const SITE: NightInputs = {
  vms: 1400,
  allocatedBytes: 60 * TB,
  dailyChangeRate: 0.03,
  storedShare: 0.5,
  hosts: 60,
  busiestHostVms: 30,
  perHostLimit: 1,
  workers: 6,
  tasksPerWorker: 4,
  taskOverheadS: 20,
  taskReadBytesPerSecond: 150 * MB,
  workerCpuBytesPerSecond: 1.5 * GB,
  workerLinkBytesPerSecond: 1.25 * GB,
  storeBytesPerSecond: 2 * GB,
  storePutsPerSecond: 2000,
  windowS: 6 * 3600,
};

test('each resource, made the scarcest, is named the bottleneck with its time', () => {
  const base: NightInputs = { vms: 12, allocatedBytes: 12 * 100 * MB, dailyChangeRate: 1, hosts: 4, workers: 2, tasksPerWorker: 2, taskOverheadS: 1, taskReadBytesPerSecond: 10 * MB };
  // One task: 1 s + 100 MB / 10 MB/s = 11 s.
  const cases: [string, Partial<NightInputs>, string, number][] = [
    ['task slots: 4 at once, 3 rounds', {}, 'slots', 33],
    ['hosts: 2 hosts, per-host 1, 6 rounds', { hosts: 2 }, 'slots', 66],
    ['an uneven host: 6 VMs on the busiest', { busiestHostVms: 6 }, 'host', 66],
    ['per-host 2 lets 4 hosts run 8, the slots stay 4', { perHostLimit: 2, workers: 4 }, 'slots', 22],
    ['global limit 1', { globalLimit: 1 }, 'slots', 132],
    ['worker CPU: 1.2 GB at 2 × 5 MB/s', { workerCpuBytesPerSecond: 5 * MB }, 'worker-cpu', 120],
    ['network: reads and stores cross a 2 × 5 MB/s link', { workerLinkBytesPerSecond: 5 * MB, storedShare: 0.5 }, 'network', 180],
    ['store bytes', { storeBytesPerSecond: 10 * MB }, 'store-bytes', 120],
    ['store PUTs: 1.2 GB in 1 MB objects + 3 per VM, at 10/s', { storePutsPerSecond: 10, objectBytes: MB }, 'store-puts', 123.6],
    ['an incremental reads only the changed share', { dailyChangeRate: 0.1 }, 'slots', 6],
    ['a full share reads whole VMs', { dailyChangeRate: 0, fullShare: 0.5 }, 'slots', 18],
  ];
  for (const [name, change, bottleneck, nightS] of cases) {
    const p = predictNight({ ...base, ...change });
    assert.equal(p.bottleneck, bottleneck, `${name}: ${JSON.stringify(p.bounds)}`);
    assert.ok(Math.abs(p.nightS - nightS) < 1e-6, `${name}: ${p.nightS} s, expected ${nightS}`);
  }
});

test('bad inputs are refused', () => {
  assert.throws(() => predictNight({ ...SITE, workers: 0 }), /workers must be above 0/);
  assert.throws(() => predictNight({ ...SITE, taskReadBytesPerSecond: Number.NaN }), /taskReadBytesPerSecond/);
  assert.throws(() => predictNight({ ...SITE, dailyChangeRate: -1 }), /dailyChangeRate/);
});

test('the article\'s site, 1,400 VMs and 60 TB (the figures docs/scale.md quotes)', () => {
  // A nightly incremental: 1.8 TB read, 0.9 TB stored in 3.4 M objects; the object store's PUTs bound it.
  const nightly = predictNight(SITE);
  assert.equal(nightly.bytesRead, 1.8 * TB);
  assert.equal(nightly.bottleneck, 'store-puts');
  assert.equal(Math.round(nightly.nightS / 60), 29);
  assert.equal(Math.round(nightly.bounds.slots / 60), 28, "24 slots: 59 rounds of 28.6 s");
  assert.equal(Math.round(nightly.bounds.host / 60), 14);
  assert.ok(nightly.fits);
  // One worker of 4 tasks: 350 rounds of 28.6 s = 2.8 h, still within 6 h.
  const one = workersNeeded(SITE);
  assert.equal(one?.workers, 1);
  assert.equal(Math.round((one?.prediction.nightS ?? 0) / 360) / 10, 2.8);
  // The first night, every VM a full: 60 TB read, 30 TB stored in 114 M objects — 16 h of PUTs at 2,000/s.
  const firstNight = predictNight({ ...SITE, fullShare: 1 });
  assert.equal(firstNight.bottleneck, 'store-puts');
  assert.equal(Math.round(firstNight.nightS / 3600), 16);
  assert.equal(firstNight.fits, false);
  assert.equal(workersNeeded({ ...SITE, fullShare: 1 }), undefined, 'no number of workers fixes the store');
  // With 8 MiB objects (packs, format v2) the first night is bound by the task slots: 24 slots, 59 rounds of 306 s = 5.0 h;
  const packed = predictNight({ ...SITE, fullShare: 1, objectBytes: 8 * 2 ** 20 });
  assert.equal(packed.bottleneck, 'slots');
  assert.equal(Math.round(packed.nightS / 360) / 10, 5);
  assert.equal(workersNeeded({ ...SITE, fullShare: 1, objectBytes: 8 * 2 ** 20 })?.workers, 5, '5 workers of 4 tasks fit 6 h');
  // and with a slot for each of the 60 hosts (15 workers) the store's 2 GB/s bounds it: 30 TB in 4.2 h.
  const wide = predictNight({ ...SITE, fullShare: 1, objectBytes: 8 * 2 ** 20, workers: 15 });
  assert.equal(wide.bottleneck, 'store-bytes');
  assert.equal(Math.round(wide.nightS / 360) / 10, 4.2);
});
