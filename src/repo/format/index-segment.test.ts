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

test('decode refuses entries out of order or repeated, whether their ids differ in the first four bytes or only later', () => {
  const swapped = (ids: Buffer[]): Buffer => {
    const bytes = encodeSegment(ids.map(entryFor));
    const first = Buffer.from(bytes.subarray(16, 16 + LOCATED_ENTRY_SIZE));
    bytes.copy(bytes, 16, 16 + LOCATED_ENTRY_SIZE, 16 + 2 * LOCATED_ENTRY_SIZE);
    first.copy(bytes, 16 + LOCATED_ENTRY_SIZE);
    return bytes;
  };
  const head = Buffer.from([1, 2, 3, 4]);
  for (const ids of [
    [Buffer.concat([Buffer.from([1]), Buffer.alloc(31)]), Buffer.concat([Buffer.from([2]), Buffer.alloc(31)])],
    [Buffer.concat([head, Buffer.alloc(28, 1)]), Buffer.concat([head, Buffer.alloc(28, 2)])],
  ]) {
    assert.throws(() => IndexSegment.decode(swapped(ids), 'swapped'), { code: 'E_CORRUPT_OBJECT' });
    const repeated = encodeSegment(ids.map(entryFor));
    (ids[0] as Buffer).copy(repeated, 16 + LOCATED_ENTRY_SIZE);
    assert.throws(() => IndexSegment.decode(repeated, 'repeated'), { code: 'E_CORRUPT_OBJECT' });
    assert.equal(IndexSegment.decode(encodeSegment(ids.map(entryFor)), 'sorted').count, 2);
  }
});
