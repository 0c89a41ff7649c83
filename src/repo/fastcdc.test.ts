import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { FastCdc, FILE_CHUNK_SIZES, GEAR } from './fastcdc.js';

/** Every chunk of `data`, as FastCdc cuts it from the start. */
function chunks(cdc: FastCdc, data: Uint8Array): Buffer[] {
  const out: Buffer[] = [];
  for (let start = 0; start < data.length; ) {
    const size = cdc.cut(data, start, data.length);
    out.push(Buffer.from(data.subarray(start, start + size)));
    start += size;
  }
  return out;
}

const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('the gear table is the fixed one (changing it would cut every file differently)', () => {
  assert.equal(GEAR.length, 256);
  assert.equal(GEAR[0], createHash('sha256').update('coffer fastcdc gear 0').digest().readInt32BE(0));
  assert.equal(GEAR[255], createHash('sha256').update('coffer fastcdc gear 255').digest().readInt32BE(0));
});

test('chunks respect min and max, average near avg, and cover the data exactly', () => {
  const cdc = new FastCdc();
  const { min, avg, max } = FILE_CHUNK_SIZES;
  const data = randomBytes(48 * avg);
  const parts = chunks(cdc, data);
  assert.ok(Buffer.concat(parts).equals(data));
  for (const part of parts.slice(0, -1)) assert.ok(part.length >= min && part.length <= max, `chunk of ${part.length} bytes`);
  const mean = data.length / parts.length;
  assert.ok(mean > avg * 0.6 && mean < avg * 1.6, `mean chunk ${mean} bytes for avg ${avg}`);
});

test('an insertion in the middle changes only the chunks around it: the rest cut the same', () => {
  const cdc = new FastCdc({ min: 2048, avg: 8192, max: 32768 });
  const data = randomBytes(2 * 1024 * 1024);
  const at = 1024 * 1024 + 12345;
  const edited = Buffer.concat([data.subarray(0, at), randomBytes(100), data.subarray(at)]);
  const before = new Set(chunks(cdc, data).map(digest));
  const after = chunks(cdc, edited).map(digest);
  const fresh = after.filter((d) => !before.has(d));
  assert.ok(fresh.length >= 1 && fresh.length <= 3, `${fresh.length} new chunks of ${after.length}`);
});

test('data of max bytes or less without a cut point, and runs of one byte, end at max', () => {
  const cdc = new FastCdc({ min: 64, avg: 256, max: 1024 });
  assert.deepEqual(chunks(cdc, new Uint8Array(3000)).map((c) => c.length), [1024, 1024, 952]);
  assert.deepEqual(chunks(cdc, new Uint8Array(50)).map((c) => c.length), [50]);
});

test('bad sizes are refused', () => {
  assert.throws(() => new FastCdc({ min: 512, avg: 1000, max: 4096 }), RangeError);
  assert.throws(() => new FastCdc({ min: 4096, avg: 4096, max: 8192 }), RangeError);
  assert.throws(() => new FastCdc({ min: 32, avg: 64, max: 128 }), RangeError);
});
