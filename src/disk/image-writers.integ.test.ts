/**
 * Every image writer fed as a copy feeds it, but in awkward pieces: writes of uneven lengths
 * that start and end inside clusters, blocks and grains, zero ranges handed to `skipZeros`,
 * and one scratch buffer refilled as soon as each write resolves (a writer that keeps a
 * reference to it past its write would store the wrong bytes). qemu-img is the oracle:
 * `compare` against the raw disk, and `check` where it supports the format.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { makeDiskTempDir, requireTools, runTool, seededBytes } from '../testing/index.js';
import { takesDirectWrites } from './direct-writes.js';
import { openDiskTarget, TARGET_FORMATS, type TargetFormat } from './open-target.js';

const run = promisify(execFile);
const KiB = 1024;
const MiB = 1024 * KiB;
// On a disk filesystem, so that the clusters and blocks that can go past the page cache do
// (output-file.ts); the writers' own tests write through it (their temporary folders).
let dir: { path: string; remove(): Promise<void> };
let work: string;
let direct = false;

before(async () => {
  await requireTools('qemu-img', 'fincore');
  dir = await makeDiskTempDir('coffer-writers');
  work = dir.path;
  direct = await takesDirectWrites(work);
});
after(() => dir?.remove());

/** Formats whose data units are whole 4 KiB sectors at sector offsets, written past the page cache. */
const WRITTEN_DIRECT = new Set<TargetFormat>(['qcow2', 'vhdx']);

/** qemu-img's name for each format, and whether `qemu-img check` supports it. */
const QEMU: Record<Exclude<TargetFormat, 'raw'>, { format: string; check: boolean }> = {
  qcow2: { format: 'qcow2', check: true },
  vhd: { format: 'vpc', check: false },
  'vhd-fixed': { format: 'vpc', check: false },
  vhdx: { format: 'vhdx', check: true },
  vmdk: { format: 'vmdk', check: true },
  'vmdk-sparse': { format: 'vmdk', check: true },
};

/** Data around unit boundaries, whole data blocks, a few bytes, and long zero ranges between; an odd size. */
function sampleDisk(): Buffer {
  const size = 45 * MiB + 12_345;
  const disk = Buffer.alloc(size);
  seededBytes(1, 5 * MiB + 3 * KiB).copy(disk, MiB - 7 * KiB);
  seededBytes(2, 100 * KiB).copy(disk, 16 * MiB - 50 * KiB);
  seededBytes(3, 9).copy(disk, 20 * MiB + 65 * KiB);
  seededBytes(4, 8 * MiB).copy(disk, 32 * MiB);
  seededBytes(5, 1000).copy(disk, size - 1000);
  return disk;
}

/** Piece lengths, repeated: unaligned to every unit (64 KiB, 1 and 2 MiB). */
const PIECES = [300 * KiB + 512, 3 * MiB + 4 * KiB, 17, 1536 * KiB, 7 * MiB + 100 * KiB];

for (const format of TARGET_FORMATS.filter((f): f is Exclude<TargetFormat, 'raw'> => f !== 'raw')) {
  test(`${format} writer: uneven writes, skipped zeros and a reused buffer make an image equal to the disk`, async () => {
    const disk = sampleDisk();
    const raw = join(work, `${format}.raw`);
    await writeFile(raw, disk);
    const path = join(work, `${format}.img`);
    const target = await openDiskTarget(path, disk.length, { format, overwrite: false });
    const scratch = Buffer.alloc(Math.max(...PIECES));
    let skipped = 0;
    for (let offset = 0, i = 0; offset < disk.length; i++) {
      const length = Math.min(disk.length - offset, PIECES[i % PIECES.length] as number);
      const piece = disk.subarray(offset, offset + length);
      if (target.skipZeros !== undefined && piece.equals(Buffer.alloc(length))) {
        await target.skipZeros(offset, length);
        skipped++;
      } else {
        piece.copy(scratch);
        await target.write(offset, scratch.subarray(0, length));
        scratch.fill(0xee); // the caller reuses its buffer as soon as the write resolves
      }
      offset += length;
    }
    await target.finish();
    assert.ok(skipped > 0, 'some zero ranges went through skipZeros');
    if (direct && WRITTEN_DIRECT.has(format)) {
      const cached = Number((await runTool('fincore', ['--bytes', '--noheadings', '--output', 'RES', path])).trim());
      const allocated = (await stat(path)).blocks * 512;
      assert.ok(cached < allocated / 4, `${cached} of the image's ${allocated} bytes are in the page cache: its clusters went past it`);
    }
    const { format: qemuFormat, check } = QEMU[format];
    if (check) await run('qemu-img', ['check', '-f', qemuFormat, path]);
    const compare = await run('qemu-img', ['compare', '-f', 'raw', '-F', qemuFormat, raw, path]).catch((error: { stdout: string }) => error);
    assert.match(compare.stdout, /Images are identical/);
  });
}

for (const format of TARGET_FORMATS.filter((f): f is Exclude<TargetFormat, 'raw'> => f !== 'raw')) {
  test(`${format} writer: calls made before the previous ones resolved (as a copy makes them) are taken in order`, async () => {
    const disk = sampleDisk();
    const raw = join(work, `${format}-ahead.raw`);
    await writeFile(raw, disk);
    const path = join(work, `${format}-ahead.img`);
    const target = await openDiskTarget(path, disk.length, { format, overwrite: false });
    // Four buffers in turn, as copyDevice uses them: each is spoiled as soon as its write
    // resolves and refilled only then, while up to three later calls are already made.
    const buffers = Array.from({ length: 4 }, () => ({ bytes: Buffer.alloc(Math.max(...PIECES)), free: Promise.resolve() }));
    const calls: Promise<void>[] = [];
    let overlapped = 0;
    let unresolved = 0;
    for (let offset = 0, i = 0; offset < disk.length; i++) {
      const length = Math.min(disk.length - offset, PIECES[i % PIECES.length] as number);
      const piece = disk.subarray(offset, offset + length);
      if (target.skipZeros !== undefined && piece.equals(Buffer.alloc(length))) {
        calls.push(target.skipZeros(offset, length));
      } else {
        const buffer = buffers[i % buffers.length] as (typeof buffers)[number];
        await buffer.free;
        piece.copy(buffer.bytes);
        if (unresolved > 0) overlapped++;
        unresolved++;
        const written = target.write(offset, buffer.bytes.subarray(0, length));
        buffer.free = written.then(() => {
          unresolved--;
          buffer.bytes.fill(0xee);
        });
        calls.push(written);
      }
      offset += length;
    }
    await Promise.all(calls);
    await target.finish();
    assert.ok(overlapped > 0, 'some writes were called before the previous one resolved');
    const { format: qemuFormat, check } = QEMU[format];
    if (check) await run('qemu-img', ['check', '-f', qemuFormat, path]);
    const compare = await run('qemu-img', ['compare', '-f', 'raw', '-F', qemuFormat, raw, path]).catch((error: { stdout: string }) => error);
    assert.match(compare.stdout, /Images are identical/);
  });
}
