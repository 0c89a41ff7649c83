import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IntervalSet } from './interval-set.js';

test('ranges are accepted in any order until one overlaps', () => {
  const set = new IntervalSet();
  const steps: [number, number, boolean][] = [
    [100, 200, true], [0, 50, true], [200, 300, true], [50, 100, true], // fills 0..300 out of order
    [299, 301, false], [0, 1, false], [150, 160, false], [300, 400, true], [500, 600, true], [450, 501, false], [400, 500, true],
  ];
  for (const [start, end, accepted] of steps) assert.equal(set.add(start, end), accepted, `[${start}, ${end})`);
  assert.equal(set.covered, 600);
});
