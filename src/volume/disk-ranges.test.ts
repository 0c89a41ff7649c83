import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BlockDevice } from '../blockdev/index.js';
import { volumeRangesOnDisk } from './disk-ranges.js';
import type { Volume } from './volume.js';

const noDevice = {} as BlockDevice; // never read: the mapping is arithmetic

test('a partition holds the part of a disk range inside it, on its own disk only', () => {
  const p1: Volume = { name: 'p1', kind: 'partition', disk: 1, offset: 1000, size: 500, device: noDevice };
  assert.deepEqual(volumeRangesOnDisk(p1, 1, { offset: 900, length: 200 }), [{ volumeOffset: 0, diskOffset: 1000, length: 100 }]);
  assert.deepEqual(volumeRangesOnDisk(p1, 1, { offset: 1400, length: 1000 }), [{ volumeOffset: 400, diskOffset: 1400, length: 100 }]);
  assert.deepEqual(volumeRangesOnDisk(p1, 0, { offset: 1000, length: 10 }), []);
  assert.deepEqual(volumeRangesOnDisk(p1, 1, { offset: 1500, length: 10 }), []);
});

test('a striped segment maps each stripe chunk back to its place in the LV; a missing PV and an unreadable LV hold nothing', () => {
  const lv: Volume = {
    name: 'vg/lv', kind: 'logical-volume', disk: 0, size: 1000 + 4 * 256, device: noDevice,
    segments: [
      { start: 0, length: 1000, stripeSize: 0, stripes: [{ disk: 0, offset: 5000 }] },
      // 4 chunks of 256: chunk 0 on disk 0 row 0, chunk 1 on disk 1 row 0, chunk 2 on disk 0 row 1, chunk 3 missing
      { start: 1000, length: 1024, stripeSize: 256, stripes: [{ disk: 0, offset: 0 }, { missing: 'pv-uuid' }] },
    ],
  };
  assert.deepEqual(volumeRangesOnDisk(lv, 0, { offset: 200, length: 400 }), [
    { volumeOffset: 1000 + 200, diskOffset: 200, length: 56 },
    { volumeOffset: 1000 + 512, diskOffset: 256, length: 256 },
  ]);
  assert.deepEqual(volumeRangesOnDisk(lv, 0, { offset: 5990, length: 20 }), [{ volumeOffset: 990, diskOffset: 5990, length: 10 }]);
  assert.deepEqual(volumeRangesOnDisk(lv, 1, { offset: 0, length: 1 << 20 }), []);
  assert.deepEqual(volumeRangesOnDisk({ ...lv, segments: undefined } as Volume, 0, { offset: 0, length: 1 << 20 }), []);
});
