/**
 * copyBytes: the same bytes as TypedArray#set, in ordinary and shared memory, overlapping
 * ranges included, and a copy that does not fit refused before anything is written; fillZeros:
 * the same bytes as TypedArray#fill(0).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { copyBytes, fillZeros } from './copy-bytes.js';

test('copyBytes copies as TypedArray#set does, small and large, into and out of shared memory, overlapping too', () => {
  for (const length of [0, 1, 255, 256, 4096, 1 << 20]) {
    const source = randomBytes(length);
    for (const shared of [false, true]) {
      const target = shared ? Buffer.from(new SharedArrayBuffer(length + 100)) : Buffer.alloc(length + 100);
      const expected = Buffer.alloc(length + 100);
      expected.set(source, 37);
      copyBytes(target, source, 37);
      assert.ok(target.equals(expected), `${length} bytes, ${shared ? 'shared' : 'ordinary'} memory`);
      // Overlapping: the window's tail moved to its start, and a range moved right by 3.
      const window = Buffer.from(new SharedArrayBuffer(length + 100));
      window.set(randomBytes(length + 100));
      const left = Buffer.from(window);
      left.copyWithin(0, 50);
      copyBytes(window, window.subarray(50));
      assert.ok(window.equals(left), `${length} bytes moved left`);
      const right = Buffer.from(window);
      right.set(Buffer.from(right.subarray(0, length)), 3);
      copyBytes(window, window.subarray(0, length), 3);
      assert.ok(window.equals(right), `${length} bytes moved right`);
    }
  }
});

test('copyBytes refuses a source that does not fit at the offset, and writes nothing', () => {
  const target = Buffer.alloc(1000, 9);
  assert.throws(() => copyBytes(target, Buffer.alloc(600, 1), 500), { code: 'ERANGE' });
  assert.ok(target.every((b) => b === 9));
  assert.throws(() => copyBytes(target, Buffer.alloc(300), 800), RangeError); // below the native size: TypedArray#set refuses too
});

test('fillZeros zeros exactly the range TypedArray#fill would, small and large (past a MiB), in shared memory too', () => {
  for (const shared of [false, true]) {
    for (const [length, from, to] of [[100, 3, 97], [3 * 1024 * 1024 + 5, 7, 3 * 1024 * 1024 + 1], [2 * 1024 * 1024, 0, 2 * 1024 * 1024], [4096, 4096, 4096]] as const) {
      const memory = shared ? new Uint8Array(new SharedArrayBuffer(length)) : new Uint8Array(length);
      memory.fill(0xa5);
      const expected = new Uint8Array(memory);
      expected.fill(0, from, to);
      fillZeros(memory, from, to);
      assert.ok(Buffer.from(memory.buffer, 0, length).equals(Buffer.from(expected.buffer)), `${shared ? 'shared' : 'ordinary'} ${length} [${from}, ${to})`);
    }
    const whole = shared ? new Uint8Array(new SharedArrayBuffer(300_000)) : new Uint8Array(300_000);
    whole.fill(1);
    fillZeros(whole.subarray(10, 299_990));
    assert.deepEqual([whole[9], whole[10], whole[299_989], whole[299_990]], [1, 0, 0, 1], 'a view: only its own bytes');
  }
});
