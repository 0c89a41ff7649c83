/**
 * An index segment's lookup: every id found, every absent id not, ids that share their first
 * bytes told apart by the rest (find compares four bytes as a number first).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { encodeSegment, IndexSegment } from './index-segment.js';
import { LOCATED_ENTRY_SIZE } from './located-entry.js';

function entryFor(id: Buffer): Buffer {
  const entry = randomBytes(LOCATED_ENTRY_SIZE);
  id.copy(entry, 0);
  return entry;
}

test('find answers the entry of every id held and nothing for ids absent, including ids that differ only past their first four bytes', () => {
  const ids: Buffer[] = [];
  for (let i = 0; i < 3000; i++) ids.push(randomBytes(32));
  // Families sharing their first 4 (and 31) bytes, at both ends of the order and in the middle.
  for (const head of [Buffer.alloc(4), Buffer.alloc(4, 0xff), Buffer.from([0x80, 0, 0, 1])]) {
    for (let i = 0; i < 20; i++) ids.push(Buffer.concat([head, randomBytes(28)]));
    const twin = Buffer.concat([head, Buffer.alloc(28, 7)]);
    ids.push(twin, Buffer.concat([twin.subarray(0, 31), Buffer.from([8])]));
  }
  const entries = ids.map(entryFor);
  const segment = IndexSegment.decode(encodeSegment(entries), 'test segment');
  assert.equal(segment.count, ids.length);
  for (const [i, id] of ids.entries()) assert.ok(segment.find(id)?.equals(entries[i] as Buffer), `id ${i} found with its entry`);
  for (let i = 0; i < 3000; i++) assert.equal(segment.find(randomBytes(32)), undefined);
  for (const id of ids) {
    const near = Buffer.from(id);
    near[31] = (near[31] as number) ^ 0x40; // the same first 31 bytes
    if (!ids.some((other) => other.equals(near))) assert.equal(segment.find(near), undefined);
  }
});
