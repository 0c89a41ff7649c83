import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dayRanges, type DataBlocks } from './daily.js';

/** Three files' extents: short ones, so stretches must cross extent boundaries. */
function blocks(): DataBlocks {
  const extents = [
    { logical: 0, start: 1000, count: 10, uninit: false },
    { logical: 10, start: 5000, count: 3, uninit: false },
    { logical: 0, start: 200, count: 50, uninit: false },
    { logical: 0, start: 9000, count: 7, uninit: false },
  ];
  const prefix = [0, 10, 13, 63];
  return { extents, prefix, total: 70 };
}

function inside(b: DataBlocks, [start, count]: [number, number]): boolean {
  return b.extents.some((e) => start >= e.start && start + count <= e.start + e.count);
}

const churn = { scattered: 5, runs: 3, maxRunBytes: 20 * 4096 };

test('dayRanges: the same day gives the same ranges, another day others', () => {
  assert.deepEqual(dayRanges(blocks(), churn, 3), dayRanges(blocks(), churn, 3));
  assert.notDeepEqual(dayRanges(blocks(), churn, 3), dayRanges(blocks(), churn, 4));
});

test('dayRanges: every range lies inside one extent of file data', () => {
  for (let day = 1; day < 30; day++) {
    for (const r of dayRanges(blocks(), churn, day)) assert.ok(inside(blocks(), r), `day ${day}: ${r.join('+')} is not file data`);
  }
});

test('dayRanges: scattered writes are single blocks, stretches follow the extents in order', () => {
  for (let day = 1; day < 30; day++) {
    const ranges = dayRanges(blocks(), churn, day);
    assert.ok(ranges.slice(0, churn.scattered).every(([, n]) => n === 1));
    const stretches = ranges.slice(churn.scattered);
    assert.ok(stretches.length >= churn.runs);
    const total = stretches.reduce((sum, [, n]) => sum + n, 0);
    assert.ok(total >= churn.runs && total <= churn.runs * 20, `day ${day}: ${total} blocks in stretches`);
  }
  // A stretch that starts near an extent's end continues at the next extent's start.
  const crossing = Array.from({ length: 200 }, (_, day) => dayRanges(blocks(), churn, day).slice(churn.scattered)).flat();
  const ends = new Set(blocks().extents.map((e) => e.start + e.count));
  const starts = new Set(blocks().extents.map((e) => e.start));
  assert.ok(
    crossing.some(([s, n], i) => ends.has(s + n) && starts.has(crossing[i + 1]?.[0] ?? -1)),
    'some stretch runs to an extent end and goes on in the next',
  );
});
