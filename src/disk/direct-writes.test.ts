import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { syscalls } from '../native/index.js';
import { makeDiskTempDir } from '../testing/index.js';
import { DIRECT_ALIGNMENT, DirectWriter } from './direct-writes.js';
import { noDirectWritesIn } from './direct-dir.test-support.js';

const MiB = 1024 * 1024;
let dir: { path: string; remove(): Promise<void> };
/** Why the tests that need O_DIRECT cannot run here, if they cannot. */
let noDirect: string | false = false;
before(async () => {
  dir = await makeDiskTempDir('direct-writes');
  noDirect = await noDirectWritesIn(dir.path);
});
after(() => dir?.remove());

/** A view of `length` bytes whose first byte sits `misalign` bytes past an aligned address. */
function placed(length: number, misalign: number): Uint8Array {
  const space = new Uint8Array(new SharedArrayBuffer(length + 2 * DIRECT_ALIGNMENT));
  const gap = syscalls.alignmentGap(space, DIRECT_ALIGNMENT);
  const view = space.subarray(gap + misalign, gap + misalign + length);
  view.set(randomBytes(length));
  return view;
}

async function emptyFile(name: string, size: number): Promise<string> {
  const path = join(dir.path, name);
  await writeFile(path, Buffer.alloc(0));
  await writeFile(path, Buffer.alloc(size));
  return path;
}

test('alignmentGap: the bytes to the next aligned address, for any view', () => {
  const space = Buffer.allocUnsafeSlow(3 * DIRECT_ALIGNMENT);
  const gap = syscalls.alignmentGap(space, DIRECT_ALIGNMENT);
  assert.ok(gap >= 0 && gap < DIRECT_ALIGNMENT);
  assert.equal(syscalls.alignmentGap(space.subarray(gap), DIRECT_ALIGNMENT), 0);
  assert.equal(syscalls.alignmentGap(space.subarray(gap + 1), DIRECT_ALIGNMENT), DIRECT_ALIGNMENT - 1);
  assert.equal(syscalls.alignmentGap(space.subarray(gap + 1), 1), 0);
  assert.throws(() => syscalls.alignmentGap(space, 3000), /power of two/);
});

test('runs of aligned and unaligned buffers, larger than the bounce buffer and crossing it, land byte for byte', async (t) => {
  if (noDirect) return t.skip(noDirect);
  const size = 24 * MiB;
  const path = await emptyFile('runs.raw', size);
  const expected = Buffer.alloc(size);
  const writer = await DirectWriter.open(path);
  assert.ok(writer !== undefined, 'this filesystem takes O_DIRECT');
  try {
    // Unaligned memory (the bounce buffer): 3 MiB + 5 MiB + 1 MiB from offset 0, crossing its 4 MiB boundary twice.
    const unaligned = [placed(3 * MiB, 16), placed(5 * MiB, 8), placed(MiB, 1)];
    // Aligned memory, lengths in whole sectors (written from the buffers themselves), at 12 MiB.
    const aligned = [placed(64 * 1024, 0), placed(8 * MiB, 0), placed(4096, 0)];
    let at = 0;
    assert.ok(writer.accepts(0, 9 * MiB));
    assert.equal(await writer.write(unaligned, 0), true);
    for (const b of unaligned) expected.set(b, (at += b.length) - b.length);
    at = 12 * MiB;
    assert.equal(await writer.write(aligned, at), true);
    for (const b of aligned) expected.set(b, (at += b.length) - b.length);
  } finally {
    await writer.close();
  }
  assert.ok((await readFile(path)).equals(expected));
});

test('writes return before the device has their bytes, but a later write of the same bytes lands after them, and close waits for all', async (t) => {
  if (noDirect) return t.skip(noDirect);
  const size = 32 * MiB;
  const path = await emptyFile('overlap.raw', size);
  const expected = Buffer.alloc(size);
  const writer = await DirectWriter.open(path);
  assert.ok(writer !== undefined);
  try {
    // Unaligned memory: through the bounce buffers, written in the background after the first.
    for (let i = 0; i < 6; i++) {
      const piece = placed(4 * MiB, 8);
      assert.equal(await writer.write([piece], i * 4 * MiB), true);
      expected.set(piece, i * 4 * MiB);
    }
    // Each 1 MiB of the last 8 written twice in a row: the second write's bytes must win
    // (the writer waits for the first; the kernel mostly happens to keep that order anyway).
    for (let i = 0; i < 8; i++) {
      for (const misalign of [8, 16]) {
        const piece = placed(MiB, misalign);
        assert.equal(await writer.write([piece], (24 + i) * MiB), true);
        expected.set(piece, (24 + i) * MiB);
      }
    }
    // The same bytes again, unaligned and aligned, while the first writes may still be under way.
    const again = placed(6 * MiB, 24);
    assert.equal(await writer.write([again], 2 * MiB), true);
    expected.set(again, 2 * MiB);
    const aligned = placed(2 * MiB, 0);
    assert.equal(await writer.write([aligned], 20 * MiB), true);
    expected.set(aligned, 20 * MiB);
  } finally {
    await writer.close();
  }
  assert.ok((await readFile(path)).equals(expected), 'every byte is the last one written there');
});

test('accepts only whole sectors at sector offsets', async (t) => {
  if (noDirect) return t.skip(noDirect);
  const writer = await DirectWriter.open(await emptyFile('accepts.raw', MiB));
  assert.ok(writer !== undefined);
  try {
    assert.equal(writer.accepts(0, 4096), true);
    assert.equal(writer.accepts(8192, 256 * 1024), true);
    assert.equal(writer.accepts(512, 4096), false);
    assert.equal(writer.accepts(0, 4096 + 1000), false);
    assert.equal(writer.accepts(0, 0), false);
  } finally {
    await writer.close();
  }
});

test('a direct write the kernel refuses (EINVAL) returns false and turns direct writes off', async (t) => {
  if (noDirect) return t.skip(noDirect);
  const path = await emptyFile('refused.raw', MiB);
  const writer = await DirectWriter.open(path);
  assert.ok(writer !== undefined);
  try {
    // Past accepts(): an offset that is not a whole sector, as a filesystem without O_DIRECT support refuses every write.
    assert.equal(await writer.write([placed(4096, 0)], 100), false);
    assert.equal(writer.accepts(0, 4096), false, 'every later write goes through the page cache');
  } finally {
    await writer.close();
  }
  assert.ok((await readFile(path)).equals(Buffer.alloc(MiB)), 'nothing was written');
  assert.equal(await DirectWriter.open(join(dir.path, 'missing', 'file.raw')), undefined);
});

test('none on a filesystem in memory (tmpfs): its page cache is the storage (only block devices, ext4, XFS and btrfs get them)', async (t) => {
  const shm = '/dev/shm';
  const type = await statfs(shm).then((s) => s.type, () => undefined);
  if (type !== 0x01021994) return t.skip('no tmpfs at /dev/shm');
  const path = join(shm, `coffer-direct-${process.pid}.raw`);
  await writeFile(path, Buffer.alloc(4096));
  try {
    assert.equal(await DirectWriter.open(path), undefined);
  } finally {
    await rm(path, { force: true });
  }
});
