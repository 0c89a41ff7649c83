import assert from 'node:assert/strict';
import { test } from 'node:test';
import { batGeometry, sectorRuns } from './vhdx-bat.js';

const MiB = 1024 * 1024;

test('BAT geometry: chunk ratio and entries with their interleaved sector bitmap entries', () => {
  const cases = [
    { layout: { blockSize: MiB, logicalSectorSize: 512, virtualSize: 16 * MiB, hasParent: false }, expected: { chunkRatio: 4096, payloadBlocks: 16, entries: 16 } },
    { layout: { blockSize: MiB, logicalSectorSize: 512, virtualSize: 16 * MiB, hasParent: true }, expected: { chunkRatio: 4096, payloadBlocks: 16, entries: 4097 } },
    { layout: { blockSize: 32 * MiB, logicalSectorSize: 512, virtualSize: 8193 * MiB, hasParent: false }, expected: { chunkRatio: 128, payloadBlocks: 257, entries: 259 } },
    { layout: { blockSize: 32 * MiB, logicalSectorSize: 4096, virtualSize: 100 * MiB, hasParent: false }, expected: { chunkRatio: 1024, payloadBlocks: 4, entries: 4 } },
    { layout: { blockSize: MiB, logicalSectorSize: 512, virtualSize: 0, hasParent: false }, expected: { chunkRatio: 4096, payloadBlocks: 0, entries: 0 } },
  ];
  for (const { layout, expected } of cases) assert.deepEqual(batGeometry(layout), expected, JSON.stringify(layout));
});

test('sector bitmap runs read the least significant bit first', () => {
  const bitmap = Uint8Array.from([0b0000_0001, 0xff, 0x00, 0b1000_0000]);
  assert.deepEqual(sectorRuns(bitmap, 0, 32), [
    { present: true, first: 0, count: 1 },
    { present: false, first: 1, count: 7 },
    { present: true, first: 8, count: 8 },
    { present: false, first: 16, count: 15 },
    { present: true, first: 31, count: 1 },
  ]);
  assert.deepEqual(sectorRuns(bitmap, 9, 3), [{ present: true, first: 9, count: 3 }]);
});
