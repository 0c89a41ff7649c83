import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BlockDevice, Extent } from '../blockdev/index.js';
import { parseChangedRanges, withChangedRanges } from './index.js';

test('changed ranges from [[offset, length]] lists and from qemu-img map JSON, sorted and merged', () => {
  assert.deepEqual(parseChangedRanges('[[100, 50], [0, 10], [140, 20], [10, 5]]', 'f'), [{ offset: 0, length: 15 }, { offset: 100, length: 60 }]);
  const map = JSON.stringify([
    { start: 0, length: 65536, depth: 1, present: true, zero: false, data: true },
    { start: 65536, length: 65536, depth: 0, present: true, zero: false, data: true },
    { start: 131072, length: 65536, depth: 0, present: true, zero: true, data: false },
    { start: 196608, length: 65536, depth: 1, present: false, zero: true, data: false },
  ]);
  assert.deepEqual(parseChangedRanges(map, 'map'), [{ offset: 65536, length: 131072 }]);
  for (const bad of ['{', '{}', '[[1]]', '[[-1, 5]]', '[["a", 1]]', '[3]']) assert.throws(() => parseChangedRanges(bad, 'f'), { code: 'E_USAGE' }, bad);
});

test('a device marked by changed ranges: changed where a range meets an extent, unchanged elsewhere', async () => {
  const device: BlockDevice = {
    size: 1000,
    read: async (_o, l) => new Uint8Array(l),
    async *extents() {
      yield { offset: 0, length: 400, kind: 'data' };
      yield { offset: 400, length: 200, kind: 'zero' };
      yield { offset: 600, length: 400, kind: 'data' };
    },
    close: async () => {},
  };
  const marked = withChangedRanges(device, [{ offset: 100, length: 50 }, { offset: 350, length: 300 }, { offset: 990, length: 10 }]);
  const map: Extent[] = [];
  for await (const e of marked.extents()) map.push(e);
  assert.deepEqual(map.map((e) => [e.offset, e.length, e.kind, e.changed]), [
    [0, 100, 'data', false], [100, 50, 'data', true], [150, 200, 'data', false], [350, 50, 'data', true],
    [400, 200, 'zero', true], [600, 50, 'data', true], [650, 340, 'data', false], [990, 10, 'data', true],
  ]);
  assert.throws(() => withChangedRanges(device, [{ offset: 900, length: 200 }]), { code: 'E_USAGE' });
});
