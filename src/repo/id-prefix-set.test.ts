import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { IdPrefixSet } from './id-prefix-set.js';

test('ids added are found, by bytes or hex; others are not; duplicates count once', () => {
  const added = Array.from({ length: 200_000 }, () => randomBytes(32));
  const set = new IdPrefixSet();
  for (const id of added) set.add(id);
  for (const id of added.slice(0, 1000)) set.add(id.toString('hex'));
  set.seal();
  assert.equal(set.size, added.length);
  for (const id of added) assert.ok(set.has(id) && set.has(id.toString('hex')));
  let falsePositives = 0;
  for (let i = 0; i < 100_000; i++) if (set.has(randomBytes(32))) falsePositives++;
  assert.equal(falsePositives, 0);
  assert.throws(() => set.add(randomBytes(32)));
});

test('an empty set has nothing', () => {
  const set = new IdPrefixSet();
  set.seal();
  assert.equal(set.size, 0);
  assert.equal(set.has('00'.repeat(32)), false);
});
