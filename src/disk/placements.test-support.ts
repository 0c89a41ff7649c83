import assert from 'node:assert/strict';
import { read } from 'node:fs';
import { promisify } from 'node:util';
import type { BlockDevice } from '../blockdev/index.js';

const readAt = promisify(read);

/**
 * Checks a device's `placements` against what it reads (`expected`: the whole disk, from an
 * independent reader): over the whole disk and over random ranges that start and end inside
 * units, the placements are ordered, contiguous and cover the range exactly; a `file`
 * placement's bytes, read from its descriptor, are the disk's; a `zero` one covers zeros.
 * `read` placements are allowed only where `mayRead` says (compressed units). Returns how many
 * bytes each kind placed over the whole disk.
 */
export async function assertPlacementsMatch(
  device: BlockDevice,
  expected: Buffer,
  options: { mayRead?: boolean; label?: string } = {},
): Promise<{ file: number; zero: number; read: number }> {
  const label = options.label ?? 'image';
  assert.ok(device.placements !== undefined, `${label}: the device says where its bytes lie`);
  const totals = { file: 0, zero: 0, read: 0 };
  const check = async (offset: number, length: number, count: boolean) => {
    let covered = offset;
    for await (const placement of (device.placements as NonNullable<BlockDevice['placements']>)(offset, length)) {
      assert.equal(placement.offset, covered, `${label}: placements over ${offset}+${length} are ordered and contiguous`);
      assert.ok(placement.length > 0, `${label}: no empty placement`);
      const want = expected.subarray(placement.offset, placement.offset + placement.length);
      if (placement.kind === 'file') {
        const got = Buffer.alloc(placement.length);
        const { bytesRead } = await readAt(placement.fd, got, 0, placement.length, placement.at);
        assert.equal(bytesRead, placement.length, `${label}: the file holds the placed bytes at ${placement.at}`);
        assert.ok(got.equals(want), `${label}: bytes placed at ${placement.at} of the file differ from guest bytes ${placement.offset}+${placement.length}`);
      } else if (placement.kind === 'zero') {
        assert.ok(want.every((b) => b === 0), `${label}: zero placement at ${placement.offset} covers data`);
      } else {
        assert.ok(options.mayRead === true, `${label}: guest bytes ${placement.offset}+${placement.length} must be read, but this image places every byte`);
      }
      if (count) totals[placement.kind] += placement.length;
      covered += placement.length;
    }
    assert.equal(covered, offset + length, `${label}: placements cover ${offset}+${length}`);
  };
  await check(0, device.size, true);
  for (let i = 0; i < 40; i++) {
    const offset = Math.floor(Math.random() * (device.size - 1));
    const length = Math.min(1 + Math.floor(Math.random() * 3 * 1024 * 1024), device.size - offset);
    await check(offset, length, false);
  }
  return totals;
}
