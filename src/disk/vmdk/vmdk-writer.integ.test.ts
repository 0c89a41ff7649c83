/**
 * The VMDK writer against qemu-img (`check`, `info`, `compare`), 7-Zip (`7zz`, an
 * independent VMDK reader, when installed) and Coffer's own reader, for both subformats.
 */
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
import { openVmdkTarget, type VmdkSubformat } from './vmdk-writer.js';

const run = promisify(execFile);
const KiB = 1024;
const MiB = 1024 * KiB;
let work: string;
let has7zz = false;

before(async () => {
  await requireTools('qemu-img');
  has7zz = await run('7zz', ['i']).then(
    () => true,
    () => false,
  );
  work = await mkdtemp(join(tmpdir(), 'coffer-vmdkw-'));
});
after(() => rm(work, { recursive: true, force: true }));

/** A disk with data, zeros, an odd size, and data across a grain table's 32 MiB boundary and the 512 MiB mark. */
function sampleDisk(size: number): SparseContent {
  const pieces =
    size > 100 * MiB
      ? [
          { offset: MiB, bytes: seededBytes(1, 3 * MiB) },
          { offset: 32 * MiB - 10 * KiB, bytes: seededBytes(4, 64 * KiB) },
          { offset: 512 * MiB - 50 * KiB, bytes: seededBytes(2, 100 * KiB) },
          { offset: 300 * MiB, bytes: Buffer.alloc(200 * KiB, 'compressible ') },
        ]
      : [];
  return new SparseContent(size, [...pieces, { offset: size - Math.min(1000, size), bytes: seededBytes(3, Math.min(1000, size)) }]);
}

const cases: { name: string; size: number; subformat: VmdkSubformat }[] = [
  { name: 'stream odd size', size: 600 * MiB + 12_345, subformat: 'streamOptimized' },
  { name: 'stream small', size: 64 * KiB, subformat: 'streamOptimized' },
  { name: 'sparse odd size', size: 600 * MiB + 12_345, subformat: 'monolithicSparse' },
  { name: 'sparse small', size: 64 * KiB, subformat: 'monolithicSparse' },
];

for (const { name, size, subformat } of cases) {
  test(`VMDK writer (${name}): qemu-img check passes, contents equal, zero grains stay unallocated`, async () => {
    const disk = sampleDisk(size);
    const path = join(work, `${name.replace(/\W+/g, '-')}.vmdk`);
    const target = await openVmdkTarget(path, size, { overwrite: false, subformat });
    await disk.writeAll((offset, bytes) => target.write(offset, bytes));
    await target.finish();
    // VMDK capacities are whole sectors: an odd size reads back padded with zeros to the next one.
    const padded = disk.resized(Math.ceil(size / 512) * 512);

    const check = await run('qemu-img', ['check', '--output=json', '-f', 'vmdk', path]);
    const report = JSON.parse(check.stdout) as { 'check-errors': number; leaks?: number; corruptions?: number };
    assert.equal(report['check-errors'], 0);
    assert.equal(report.leaks ?? 0, 0);
    assert.equal(report.corruptions ?? 0, 0);
    const info = JSON.parse((await run('qemu-img', ['info', '--output=json', path])).stdout) as {
      format: string;
      'virtual-size': number;
      'format-specific': { data: { 'create-type': string } };
    };
    assert.equal(info.format, 'vmdk');
    assert.equal(info['virtual-size'], padded.size);
    assert.equal(info['format-specific'].data['create-type'], subformat);
    const raw = join(work, 'in.raw');
    await padded.writeRawFile(raw);
    await run('qemu-img', ['compare', '-f', 'raw', '-F', 'vmdk', raw, path]);
    if (has7zz) await padded.assertCommandPrints('7zz', ['e', '-so', path], '7-Zip');

    const image = await openDiskImage(path);
    assert.equal(image.size, padded.size);
    await padded.assertReadsBack((offset, length) => image.read(offset, length), 'our reader');
    await image.close();
    if (size > 100 * MiB) {
      const { blocks, size: length } = await stat(path);
      assert.ok(blocks * 512 < 8 * MiB && length < 8 * MiB, `sparse: only data grains are stored (${length} bytes)`);
    }
  });
}

test('VMDK writer refuses to replace a file unless asked, and disks over 2 TiB', async () => {
  const path = join(work, 'exists.vmdk');
  const target = await openVmdkTarget(path, 64 * KiB, { overwrite: false, subformat: 'streamOptimized' });
  await target.write(0, Buffer.alloc(64 * KiB, 1));
  await target.finish();
  await assert.rejects(openVmdkTarget(path, 64 * KiB, { overwrite: false, subformat: 'streamOptimized' }), (e) => isCofferError(e, 'E_TARGET_UNWRITABLE'));
  await assert.rejects(openVmdkTarget(join(work, 'huge.vmdk'), 3 * 1024 ** 4, { overwrite: false, subformat: 'monolithicSparse' }), (e) => isCofferError(e, 'E_TARGET_UNWRITABLE'));
});

test('VMDK writer: abort removes the file', async () => {
  const path = join(work, 'aborted.vmdk');
  const target = await openVmdkTarget(path, 128 * KiB, { overwrite: false, subformat: 'monolithicSparse' });
  await target.write(0, Buffer.alloc(64 * KiB, 1));
  await target.abort();
  await assert.rejects(stat(path), { code: 'ENOENT' });
});
