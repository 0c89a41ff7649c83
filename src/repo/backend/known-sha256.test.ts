import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { rememberSha256, sha256Of } from './known-sha256.js';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest();

test('a buffer with no remembered digest is hashed', () => {
  const data = randomBytes(1000);
  assert.deepEqual(sha256Of(data), sha256(data));
});

test('a remembered digest is returned for that buffer object only', () => {
  const data = randomBytes(1000);
  const remembered = Buffer.alloc(32, 7); // not the bytes' digest: proves it is not recomputed
  rememberSha256(data, remembered);
  assert.equal(sha256Of(data), remembered);
  const sameBytes = Buffer.from(data);
  assert.deepEqual(sha256Of(sameBytes), sha256(data), 'another buffer with the same bytes is hashed');
  assert.deepEqual(sha256Of(data.subarray(0)), sha256(data), 'a view of it is another object');
});

test('a digest of the wrong length is refused', () => {
  assert.throws(() => rememberSha256(randomBytes(10), Buffer.alloc(20)), RangeError);
});
