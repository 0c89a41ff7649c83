import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SliceDevice, type BlockDevice, type Extent } from './index.js';

/** A 64-byte device whose byte i is i, with a zero extent at [16, 32). */
function counting(): BlockDevice {
  const bytes = Uint8Array.from({ length: 64 }, (_, i) => (i >= 16 && i < 32 ? 0 : i));
  return {
    size: 64,
    read: async (offset, length) => bytes.slice(offset, offset + length),
    async *extents(offset = 0, length = 64 - offset) {
      const cuts = [0, 16, 32, 64];
      for (let i = 0; i < 3; i++) {
        const from = Math.max(offset, cuts[i]!);
        const to = Math.min(offset + length, cuts[i + 1]!);
        if (from < to) yield { offset: from, length: to - from, kind: i === 1 ? 'zero' : 'data' } satisfies Extent;
      }
    },
    close: async () => {},
  };
}

test('a slice reads and maps its window of the parent, in its own offsets', async () => {
  const slice = new SliceDevice(counting(), 8, 40);
  assert.deepEqual([...(await slice.read(0, 4))], [8, 9, 10, 11]);
  assert.deepEqual([...(await slice.read(36, 4))], [44, 45, 46, 47]);
  const map: Extent[] = [];
  for await (const e of slice.extents()) map.push(e);
  assert.deepEqual(map, [
    { offset: 0, length: 8, kind: 'data' },
    { offset: 8, length: 16, kind: 'zero' },
    { offset: 24, length: 16, kind: 'data' },
  ]);
});

test('a slice refuses windows and reads outside its bounds', async () => {
  assert.throws(() => new SliceDevice(counting(), 60, 8), RangeError);
  const slice = new SliceDevice(counting(), 8, 40);
  assert.throws(() => slice.read(38, 4), RangeError);
});
