import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { isCofferError } from '../../errors/index.js';
import { requireTools, seededBytes, SparseContent } from '../../testing/index.js';
import { openDiskImage } from '../open-image.js';
import { openQcow2Target } from './qcow2-writer.js';

const run = promisify(execFile);
const KiB = 1024;
const MiB = 1024 * KiB;
let work: string;

before(async () => {
  await requireTools('qemu-img');
  work = await mkdtemp(join(tmpdir(), 'coffer-qcow2w-'));
});
after(() => rm(work, { recursive: true, force: true }));

/** A disk with data, zeros, an odd size, and data across an L2 table's 512 MiB boundary. */
function sampleDisk(size: number): SparseContent {
  return new SparseContent(size, [
    { offset: MiB, bytes: seededBytes(1, 3 * MiB) },
    { offset: 512 * MiB - 50 * KiB, bytes: seededBytes(2, 100 * KiB) },
    { offset: size - 1000, bytes: seededBytes(3, 1000) },
  ]);
}

const sizes = [
  { name: 'odd size', size: 600 * MiB + 12_345 },
  { name: 'one cluster', size: 64 * KiB },
];

for (const { name, size } of sizes) {
  test(`qcow2 writer (${name}): qemu-img check passes, contents equal, zero clusters stay unallocated`, async () => {
    const disk = sampleDisk(size);
    const path = join(work, `${name.replace(/\W+/g, '-')}.qcow2`);
    const target = await openQcow2Target(path, size, { overwrite: false });
    await disk.writeAll((offset, bytes) => target.write(offset, bytes));
    await target.finish();
    const check = await run('qemu-img', ['check', '--output=json', path]);
    const report = JSON.parse(check.stdout) as { 'check-errors': number; leaks?: number; corruptions?: number };
    assert.equal(report['check-errors'], 0);
    assert.equal(report.leaks ?? 0, 0);
    assert.equal(report.corruptions ?? 0, 0);
    // QEMU's sizes are whole sectors: an odd size reads back padded with zeros to the next one.
    const padded = disk.resized(Math.ceil(size / 512) * 512);
    const raw = join(work, 'in.raw');
    await padded.writeRawFile(raw);
    await run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', raw, path]);
    const image = await openDiskImage(path);
    assert.equal(image.size, padded.size);
    await padded.assertReadsBack((offset, length) => image.read(offset, length), 'our reader');
    await image.close();
    if (size > 100 * MiB) assert.ok((await stat(path)).size < 8 * MiB, 'sparse: only data clusters are stored');
  });
}

test('qcow2 writer refuses to replace a file unless asked', async () => {
  const path = join(work, 'exists.qcow2');
  const target = await openQcow2Target(path, 64 * KiB, { overwrite: false });
  await target.write(0, Buffer.alloc(64 * KiB, 1));
  await target.finish();
  await assert.rejects(openQcow2Target(path, 64 * KiB, { overwrite: false }), (e) => isCofferError(e, 'E_TARGET_UNWRITABLE'));
});
