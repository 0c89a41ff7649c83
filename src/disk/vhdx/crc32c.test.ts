import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32c } from './crc32c.js';

test('crc32c matches the published check values', () => {
  const cases: [Uint8Array, number][] = [
    [Buffer.from('123456789'), 0xe3069283], // the standard check value (RFC 3720 family)
    [new Uint8Array(0), 0],
    [new Uint8Array(32), 0x8a9136aa], // RFC 3720 B.4: 32 bytes of zeros
    [new Uint8Array(32).fill(0xff), 0x62a8ab43], // RFC 3720 B.4: 32 bytes of ones
    [Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e], // RFC 3720 B.4: incrementing
  ];
  for (const [bytes, expected] of cases) assert.equal(crc32c(bytes), expected, Buffer.from(bytes).toString('hex'));
});

test('crc32c counts a skipped checksum field as zeros', () => {
  const bytes = Buffer.from('abcdefghijkl');
  const zeroed = Buffer.from(bytes);
  zeroed.fill(0, 4, 8);
  assert.equal(crc32c(bytes, 4), crc32c(zeroed));
  assert.notEqual(crc32c(bytes, 4), crc32c(bytes));
});
