import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { decodeRunlist } from './runlist.js';

test('runs: lengths, signed LCN deltas, sparse runs', () => {
  // 0x21: 1-byte length 0x18, 2-byte offset 0x5634 -> lcn 0x5634
  // 0x11: length 0x10, delta -0x10 (0xF0)           -> lcn 0x5624
  // 0x01: length 0x20, sparse
  // 0x31: length 0x08, 3-byte delta +0x000100       -> lcn 0x5724
  const pairs = Uint8Array.from([0x21, 0x18, 0x34, 0x56, 0x11, 0x10, 0xf0, 0x01, 0x20, 0x31, 0x08, 0x00, 0x01, 0x00, 0x00]);
  assert.deepEqual(decodeRunlist(pairs, 0, 1 << 20, 't'), [
    { vcn: 0, lcn: 0x5634, length: 0x18 },
    { vcn: 0x18, lcn: 0x5624, length: 0x10 },
    { vcn: 0x28, lcn: null, length: 0x20 },
    { vcn: 0x48, lcn: 0x5724, length: 0x08 },
  ]);
});

test('extents continue from their lowest VCN', () => {
  assert.deepEqual(decodeRunlist(Uint8Array.from([0x11, 0x04, 0x10, 0x00]), 100, 1000, 't'), [{ vcn: 100, lcn: 0x10, length: 4 }]);
});

test('bad runlists are E_FS_CORRUPT', () => {
  const cases = [
    [0x11, 0x04, 0x10], // no end marker
    [0x11, 0x04], // cut short
    [0x11, 0x00, 0x10, 0x00], // zero length
    [0x11, 0x04, 0xf0, 0x00], // negative LCN
    [0x21, 0x04, 0xff, 0x7f, 0x00], // beyond the volume
    [0x90, 0x00], // no length field
  ];
  for (const c of cases) assert.throws(() => decodeRunlist(Uint8Array.from(c), 0, 1000, 't'), (e) => isCofferError(e, 'E_FS_CORRUPT'), JSON.stringify(c));
});
