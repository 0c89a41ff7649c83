import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeL2Entry, decodeStandardL2Entry } from './qcow2-l2.js';

const COPIED = 1n << 63n;

test('decodeStandardL2Entry: the same mapping as the BigInt decoder for standard entries, null for compressed ones', () => {
  const entries: bigint[] = [
    0n, // unallocated
    1n, // reads as zeros, no host cluster
    0x1_0000n | 1n, // zero flag wins over a preallocated host cluster
    0x1_0000n | COPIED, // data at 64 KiB
    0x8000_0000n | COPIED, // bit 31 of the low half set (a sign bit in 32-bit arithmetic)
    0xffff_0000n,
    0x12_3456_7800_0000n | COPIED, // past 4 GiB
    0x00ff_ffff_ffff_0000n, // the largest offset the mask allows
    (1n << 62n) | 0x1234n, // compressed
  ];
  for (const entry of entries) {
    const high = Number(entry >> 32n);
    const low = Number(entry & 0xffff_ffffn);
    const fast = decodeStandardL2Entry(high, low);
    const slow = decodeL2Entry(entry, undefined, 16);
    if (slow.kind === 'compressed') assert.equal(fast, null, `entry 0x${entry.toString(16)}`);
    else assert.deepEqual(fast, slow, `entry 0x${entry.toString(16)}`);
  }
});
