import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSectorBitmap, sectorRuns } from './vhd-bat.js';

test('sector bitmaps: summaries and runs, most significant bit first', () => {
  const bitmap = new Uint8Array(512);
  assert.equal(parseSectorBitmap(bitmap, 4096), 'empty');
  assert.equal(parseSectorBitmap(new Uint8Array(512).fill(0xff), 4096), 'full');
  assert.equal(parseSectorBitmap(Uint8Array.of(0xf0), 4), 'full', 'only the sectors of the block count');
  assert.equal(parseSectorBitmap(Uint8Array.of(0x0f), 4), 'empty');
  bitmap.fill(0xff, 2, 4); // sectors 16..31
  bitmap[5] = 0x81; // sectors 40 and 47
  const parsed = parseSectorBitmap(bitmap, 4096);
  assert.ok(parsed instanceof Uint8Array);
  assert.deepEqual(sectorRuns(parsed, 0, 64), [
    { present: false, first: 0, count: 16 },
    { present: true, first: 16, count: 16 },
    { present: false, first: 32, count: 8 },
    { present: true, first: 40, count: 1 },
    { present: false, first: 41, count: 6 },
    { present: true, first: 47, count: 1 },
    { present: false, first: 48, count: 16 },
  ]);
  assert.deepEqual(sectorRuns(parsed, 20, 3), [{ present: true, first: 20, count: 3 }]);
  assert.deepEqual(sectorRuns('full', 7, 9), [{ present: true, first: 7, count: 9 }]);
});
