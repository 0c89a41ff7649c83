/**
 * The VHD writer against qemu-img: `qemu-img check` does not support vpc, so the oracles are
 * `qemu-img info` (format, virtual size) and `qemu-img compare` against the raw input, plus
 * 7-Zip (`7zz`, an independent VHD reader) when installed, and Coffer's own reader.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { CofferError, isCofferError } from '../../errors/index.js';
import { requireTools, seededBytes, SparseContent } from '../../testing/index.js';
import { openDiskImage } from '../open-image.js';
import { parseVhdFooter } from './vhd-footer.js';
import { openVhdTarget, vhdGeometry, type VhdSubformat } from './vhd-writer.js';

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
  work = await mkdtemp(join(tmpdir(), 'coffer-vhdw-'));
});
after(() => rm(work, { recursive: true, force: true }));

/** A disk with data, zeros, an odd size, and data across a 2 MiB block boundary and the 512 MiB mark. */
function sampleDisk(size: number): SparseContent {
  const pieces = [
    { offset: MiB, bytes: seededBytes(1, 3 * MiB) },
    { offset: 512 * MiB - 50 * KiB, bytes: seededBytes(2, 100 * KiB) },
    { offset: size - Math.min(1000, size), bytes: seededBytes(3, Math.min(1000, size)) },
  ];
  return new SparseContent(size, pieces);
}

/** The last 512 bytes of the file at `path` (a VHD's footer), without reading a fixed disk whole. */
async function lastSector(path: string): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const { buffer } = await handle.read(Buffer.alloc(512), 0, 512, size - 512);
    return buffer;
  } finally {
    await handle.close();
  }
}

const cases: { name: string; size: number; subformat: VhdSubformat }[] = [
  { name: 'dynamic odd size', size: 600 * MiB + 12_345, subformat: 'dynamic' },
  { name: 'dynamic small', size: 64 * KiB, subformat: 'dynamic' },
  { name: 'fixed odd size', size: 600 * MiB + 12_345, subformat: 'fixed' },
  { name: 'fixed small', size: 64 * KiB, subformat: 'fixed' },
];

for (const { name, size, subformat } of cases) {
  test(`VHD writer (${name}): qemu-img reads back what was written, zero blocks stay unallocated`, async () => {
    const disk = sampleDisk(size);
    const path = join(work, `${name.replace(/\W+/g, '-')}.vhd`);
    const target = await openVhdTarget(path, size, { overwrite: false, subformat });
    await disk.writeAll((offset, bytes) => target.write(offset, bytes));
    await target.finish();
    // VHD sizes are whole sectors: an odd size reads back padded with zeros to the next one.
    const padded = disk.resized(Math.ceil(size / 512) * 512);

    const info = JSON.parse((await run('qemu-img', ['info', '--output=json', '-f', 'vpc', path])).stdout) as { format: string; 'virtual-size': number };
    assert.equal(info.format, 'vpc');
    assert.equal(info['virtual-size'], padded.size, 'qemu takes the current size, not C×H×S');
    const raw = join(work, 'in.raw');
    await padded.writeRawFile(raw);
    await run('qemu-img', ['compare', '-f', 'raw', '-F', 'vpc', raw, path]);
    if (has7zz) await padded.assertCommandPrints('7zz', ['e', '-so', path], '7-Zip');

    const image = await openDiskImage(path);
    assert.equal(image.size, padded.size);
    await padded.assertReadsBack((offset, length) => image.read(offset, length), 'our reader');
    await image.close();
    const footer = parseVhdFooter(await lastSector(path), { invalid: (m) => new CofferError('E_IMAGE_INVALID', m), unsupported: (m) => new CofferError('E_UNSUPPORTED_FORMAT', m) });
    assert.equal(footer.diskType, subformat);
    assert.deepEqual(footer.geometry, vhdGeometry(padded.size / 512));
    if (size > 100 * MiB) {
      const { blocks } = await stat(path);
      assert.ok(blocks * 512 < 16 * MiB, `sparse: only data blocks are stored (${blocks * 512} bytes on disk)`);
    }
    if (subformat === 'dynamic' && size > 100 * MiB) assert.ok((await stat(path)).size < 16 * MiB, 'dynamic: only data blocks are in the file');
  });
}

test('VHD geometry follows the specification', () => {
  const table = [
    { sectors: 128, chs: { cylinders: 1, heads: 4, sectorsPerTrack: 17 } },
    { sectors: (600 * MiB) / 512, chs: { cylinders: 1219, heads: 16, sectorsPerTrack: 63 } },
    { sectors: 65535 * 16 * 255 + 5, chs: { cylinders: 65535, heads: 16, sectorsPerTrack: 255 } },
  ];
  for (const { sectors, chs } of table) assert.deepEqual(vhdGeometry(sectors), chs);
});

test('VHD writer refuses to replace a file unless asked, and sizes past 2040 GiB', async () => {
  const path = join(work, 'exists.vhd');
  const target = await openVhdTarget(path, 64 * KiB, { overwrite: false, subformat: 'dynamic' });
  await target.write(0, Buffer.alloc(64 * KiB, 1));
  await target.finish();
  await assert.rejects(openVhdTarget(path, 64 * KiB, { overwrite: false, subformat: 'dynamic' }), (e) => isCofferError(e, 'E_TARGET_UNWRITABLE'));
  await assert.rejects(openVhdTarget(join(work, 'huge.vhd'), 2041 * 1024 * MiB, { overwrite: false, subformat: 'dynamic' }), (e) => isCofferError(e, 'E_TARGET_UNWRITABLE'));
});

test('VHD writer: abort removes the file', async () => {
  const path = join(work, 'aborted.vhd');
  const target = await openVhdTarget(path, 4 * MiB, { overwrite: false, subformat: 'dynamic' });
  await target.write(0, Buffer.alloc(2 * MiB, 1));
  await target.abort();
  await assert.rejects(stat(path), { code: 'ENOENT' });
});
