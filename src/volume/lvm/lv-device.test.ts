import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BlockDevice, Extent } from '../../blockdev/index.js';
import { isCofferError } from '../../errors/index.js';
import { LogicalVolumeDevice, UnreadableDevice, type MappedSegment } from './lv-device.js';

/** A PV whose byte i is (i × 7 + seed) mod 251, with a zero extent over [zeroFrom, zeroTo). */
function pv(size: number, seed: number, zeroFrom = size, zeroTo = size): BlockDevice & { bytes: Uint8Array } {
  const bytes = Uint8Array.from({ length: size }, (_, i) => (i >= zeroFrom && i < zeroTo ? 0 : (i * 7 + seed) % 251));
  return {
    bytes,
    size,
    read: async (offset, length, into) => {
      const out = into ?? new Uint8Array(length);
      out.set(bytes.subarray(offset, offset + length));
      return out;
    },
    async *extents(offset = 0, length = size - offset) {
      const cuts = [0, zeroFrom, zeroTo, size];
      for (let i = 0; i < 3; i++) {
        const from = Math.max(offset, cuts[i]!);
        const to = Math.min(offset + length, cuts[i + 1]!);
        if (from < to) yield { offset: from, length: to - from, kind: i === 1 ? 'zero' : 'data' } satisfies Extent;
      }
    },
    close: async () => {},
  };
}

test('a linear then a striped segment: every byte comes from the area the mapping rule names', async () => {
  const a = pv(4096, 1);
  const b = pv(4096, 2);
  const segments: MappedSegment[] = [
    { start: 0, length: 1000, stripeSize: 0, stripes: [{ device: a, offset: 3000 }] },
    { start: 1000, length: 2048, stripeSize: 256, stripes: [{ device: a, offset: 0 }, { device: b, offset: 1024 }] },
  ];
  const lv = new LogicalVolumeDevice('vg/lv', segments);
  assert.equal(lv.size, 3048);
  // Byte by byte, the rule: in the striped segment, chunk c of 256 bytes lies on stripe c mod 2, row ⌊c / 2⌋.
  const expected = new Uint8Array(3048);
  for (let i = 0; i < 3048; i++) {
    if (i < 1000) expected[i] = a.bytes[3000 + i]!;
    else {
      const r = i - 1000;
      const c = Math.floor(r / 256);
      const area = c % 2 === 0 ? { bytes: a.bytes, at: 0 } : { bytes: b.bytes, at: 1024 };
      expected[i] = area.bytes[area.at + Math.floor(c / 2) * 256 + (r % 256)]!;
    }
  }
  assert.deepEqual(await lv.read(0, 3048), expected);
  for (const [offset, length] of [[990, 20], [1250, 20], [1000, 256], [3047, 1], [0, 0], [1700, 900]] as const) {
    assert.deepEqual(await lv.read(offset, length), expected.subarray(offset, offset + length), `${length} at ${offset}`);
  }
  await assert.rejects(lv.read(3000, 49), RangeError);
});

test('the extent map passes a linear segment\'s holes through and calls striped segments data', async () => {
  const a = pv(4096, 1, 3100, 3500);
  const lv = new LogicalVolumeDevice('vg/lv', [
    { start: 0, length: 1000, stripeSize: 0, stripes: [{ device: a, offset: 3000 }] },
    { start: 1000, length: 512, stripeSize: 256, stripes: [{ device: a, offset: 0 }, { device: a, offset: 512 }] },
  ]);
  const map: Extent[] = [];
  for await (const e of lv.extents()) map.push(e);
  assert.deepEqual(map, [
    { offset: 0, length: 100, kind: 'data' },
    { offset: 100, length: 400, kind: 'zero' },
    { offset: 500, length: 1012, kind: 'data' },
  ]);
});

test('bytes on a missing PV throw E_SOURCE_UNREADABLE naming it; bytes elsewhere read', async () => {
  const a = pv(4096, 1);
  const lv = new LogicalVolumeDevice('vg/lv', [
    { start: 0, length: 1024, stripeSize: 256, stripes: [{ device: a, offset: 0 }, { missing: 'abcdef-PV' }] },
  ]);
  assert.deepEqual(await lv.read(0, 256), a.bytes.subarray(0, 256));
  await assert.rejects(lv.read(200, 100), (e) => isCofferError(e, 'E_SOURCE_UNREADABLE') && /abcdef-PV/.test(e.message));
});

test('an unreadable volume has a size and throws its code on read', async () => {
  const device = new UnreadableDevice(4096, 'E_FS_UNSUPPORTED', 'vg/thin: thin volumes are not read');
  await assert.rejects(device.read(0, 1), (e) => isCofferError(e, 'E_FS_UNSUPPORTED'));
  await assert.rejects(device.read(4096, 1), RangeError);
});
