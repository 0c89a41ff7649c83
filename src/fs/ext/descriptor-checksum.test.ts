import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32cUpdate } from '../crc32c.js';
import { crc16Update } from './descriptor-checksum.js';

test('crc16 is the kernel\'s (reflected 0xA001, no final complement): the CRC-16/ARC and MODBUS check values', () => {
  const check = Buffer.from('123456789');
  assert.equal(crc16Update(0, check, 0, check.length), 0xbb3d);
  assert.equal(crc16Update(0xffff, check, 0, check.length), 0x4b37);
  assert.equal(crc16Update(crc16Update(0xffff, check, 0, 4), check, 4, check.length), 0x4b37, 'chains');
});

test('the raw CRC-32C register chains and, complemented, is the standard check value', () => {
  const check = Buffer.from('123456789');
  const raw = crc32cUpdate(crc32cUpdate(0xffffffff, check, 0, 3), check, 3);
  assert.equal((raw ^ 0xffffffff) >>> 0, 0xe3069283);
});
