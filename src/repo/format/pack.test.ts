import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { decodeIndexPage, encodeIndexPage, isZeroEntry } from './index-page.js';
import { encodeSegment, IndexSegment } from './index-segment.js';
import { decodeLocatedEntry, encodeLocatedEntry, entryId, LOCATED_ENTRY_SIZE } from './located-entry.js';
import { decodeFrameTable, decodeTrailer, encodeFramePlaintext, encodeTrailer, packFooter, trailerRange } from './pack.js';

const location = (seed: number) => ({ id: randomBytes(32), pack: randomBytes(32), frameOffset: 8 + seed, frameLength: 1000 + seed, chunkOffset: 44, chunkLength: 65536 });

test('a located entry round-trips, and its first 32 bytes are the chunk id', () => {
  const l = location(1);
  const entry = encodeLocatedEntry(l);
  assert.equal(entry.length, LOCATED_ENTRY_SIZE);
  assert.deepEqual(decodeLocatedEntry(entry, 'e'), l);
  assert.ok(entryId(entry).equals(l.id));
  assert.throws(() => decodeLocatedEntry(entry.subarray(0, 79), 'e'), (e) => isCofferError(e, 'E_CORRUPT_OBJECT'));
  assert.throws(() => decodeLocatedEntry(Buffer.alloc(80), 'e'), (e) => isCofferError(e, 'E_CORRUPT_OBJECT'));
});

test('index pages of layout 2 hold located entries; 80 zero bytes are a zero block', () => {
  const entries = [encodeLocatedEntry(location(1)), Buffer.alloc(80), encodeLocatedEntry(location(2))];
  const page = encodeIndexPage(entries);
  assert.equal(page.subarray(0, 4).toString('ascii'), 'CFI2');
  const decoded = decodeIndexPage(page, 'p');
  assert.deepEqual(decoded, entries);
  assert.deepEqual(decoded.map(isZeroEntry), [false, true, false]);
  assert.throws(() => encodeIndexPage([randomBytes(32), encodeLocatedEntry(location(3))]), RangeError);
  assert.throws(() => decodeIndexPage(Buffer.concat([page, Buffer.alloc(32)]), 'p'), (e) => isCofferError(e, 'E_CORRUPT_OBJECT'));
});

test('a frame table names each chunk at its offset; malformed tables are refused', () => {
  const chunks = [{ id: randomBytes(32), data: randomBytes(100) }, { id: randomBytes(32), data: randomBytes(7) }];
  const plaintext = encodeFramePlaintext(chunks);
  const table = decodeFrameTable(plaintext, 'f');
  assert.deepEqual(table.map((c) => [c.id, c.length]), chunks.map((c) => [c.id, c.data.length]));
  for (const [i, c] of table.entries()) assert.ok(plaintext.subarray(c.offset, c.offset + c.length).equals(chunks[i]?.data as Buffer));
  for (const bad of [plaintext.subarray(0, plaintext.length - 1), Buffer.concat([plaintext, Buffer.alloc(1)]), Buffer.alloc(plaintext.length)]) {
    assert.throws(() => decodeFrameTable(bad, 'f'), (e) => isCofferError(e, 'E_CORRUPT_OBJECT'));
  }
});

test('a trailer round-trips and is bounds-checked against the pack; the footer locates it', () => {
  const trailer = { frames: [{ offset: 8, length: 500 }, { offset: 508, length: 300 }], chunks: [{ id: randomBytes(32), frame: 1, offset: 80, length: 220 }] };
  const plaintext = encodeTrailer(trailer);
  assert.deepEqual(decodeTrailer(plaintext, 2000, 'p'), trailer);
  assert.throws(() => decodeTrailer(plaintext, 810, 'p'), (e) => isCofferError(e, 'E_CORRUPT_OBJECT')); // frame 1 ends past the footer
  const bad = Buffer.from(plaintext);
  bad.writeUInt32LE(2, 16 + 16 + 32); // chunk names frame 2 of 2
  assert.throws(() => decodeTrailer(bad, 2000, 'p'), (e) => isCofferError(e, 'E_CORRUPT_OBJECT'));
  assert.deepEqual(trailerRange(packFooter(100), 2000, 'p'), { offset: 1892, length: 100 });
  assert.throws(() => trailerRange(packFooter(1990), 2000, 'p'), (e) => isCofferError(e, 'E_CORRUPT_OBJECT'));
});

test('an index segment is sorted, unique, and finds every entry it holds (and nothing else)', () => {
  const entries = Array.from({ length: 300 }, (_, i) => encodeLocatedEntry(location(i)));
  const segment = IndexSegment.decode(encodeSegment([...entries, entries[5] as Buffer]), 's');
  assert.equal(segment.count, 300);
  for (const entry of entries) assert.ok(segment.find(entryId(entry))?.equals(entry));
  assert.equal(segment.find(randomBytes(32)), undefined);
  const bytes = encodeSegment(entries);
  const swapped = Buffer.from(bytes);
  bytes.copy(swapped, 16, 16 + 80, 16 + 160);
  bytes.copy(swapped, 16 + 80, 16, 16 + 80);
  assert.throws(() => IndexSegment.decode(swapped, 's'), (e) => isCofferError(e, 'E_CORRUPT_OBJECT'));
});
