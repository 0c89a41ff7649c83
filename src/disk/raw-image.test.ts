import assert from 'node:assert/strict';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeTempDir, seededBytes } from '../testing/index.js';
import { openDiskImage } from './open-image.js';
import { assertPlacementsMatch } from './placements.test-support.js';

const MiB = 1024 * 1024;

test('a sparse raw image places its data in its own file at the same offsets and its holes as zeros', async () => {
  const dir = await makeTempDir('coffer-raw-placements');
  try {
    const path = join(dir.path, 'disk.raw');
    const expected = Buffer.alloc(20 * MiB + 4096);
    seededBytes(1, 3 * MiB + 100).copy(expected, MiB - 50);
    seededBytes(2, 4096).copy(expected, 20 * MiB);
    const file = await open(path, 'w');
    await file.truncate(expected.length);
    await file.write(expected, MiB - 50, 3 * MiB + 100, MiB - 50);
    await file.write(expected, 20 * MiB, 4096, 20 * MiB);
    await file.close();
    const image = await openDiskImage(path);
    try {
      const placed = await assertPlacementsMatch(image, expected, { label: path });
      assert.equal(placed.read, 0);
      assert.ok(placed.zero >= 14 * MiB, `${placed.zero} bytes of holes placed as zeros`);
    } finally {
      await image.close();
    }
  } finally {
    await dir.remove();
  }
});
