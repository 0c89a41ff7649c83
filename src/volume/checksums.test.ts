import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32, lvmChecksum } from './checksums.js';

test('CRC-32 check value, and LVM\'s variant chains over pieces', () => {
  const text = Buffer.from('123456789');
  assert.equal(crc32(text), 0xcbf43926);
  // LVM's variant with the standard initial value and a final inversion is CRC-32 itself.
  assert.equal(~lvmChecksum(text, 0xffffffff) >>> 0, 0xcbf43926);
  assert.equal(lvmChecksum(text), lvmChecksum(text.subarray(4), lvmChecksum(text.subarray(0, 4))));
  assert.notEqual(lvmChecksum(text), crc32(text));
});
