import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32c, xfsCrcMatches } from './crc32c.js';
import { xfsNameHash } from './dir-hash-index.js';

test('crc32c: the standard check value, and XFS-style embedded checksums', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  const block = Buffer.from('0123456789abcdef0123456789abcdef');
  block.writeUInt32LE(crc32c(Buffer.concat([block.subarray(0, 8), Buffer.alloc(4), block.subarray(12)])), 8);
  assert.ok(xfsCrcMatches(block, 8));
  block.writeUInt8(block.readUInt8(20) ^ 1, 20);
  assert.ok(!xfsCrcMatches(block, 8));
});

test('name hashes equal those xfs_db lists for the same names (one per length class)', () => {
  // From `xfs_db -r -c 'path /links' -c ls` on the test image.
  const table: [string, number][] = [
    ['.', 0x2e], ['..', 0x172e], ['absolute', 0xfd5ef1fb], ['dangling', 0x7d53f011], ['dir-link', 0xdd53d0f9],
    ['hard-link', 0xb559bc49], ['long-target', 0xf0975e65], ['relative', 0x1e7fec03], ['btree.bin', 0x37317fc0],
    ['unwritten.bin', 0x8b6cba39], ['sparse.bin', 0xa51b7f49], ['fifo', 0x0cda736f], ['café-crème.txt', 0x9a7c73ec],
  ];
  for (const [name, hash] of table) assert.equal(xfsNameHash(Buffer.from(name)), hash, name);
});
