/**
 * The VHD writer against qemu-img: `qemu-img check` does not support vpc, so the oracles are
 * `qemu-img info` (format, virtual size) and `qemu-img compare` against the raw input, plus
 * 7-Zip (`7zz`, an independent VHD reader) when installed, and Coffer's own reader.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { CofferError, isCofferError } from '../../errors/index.js';
import { requireTools, seededBytes } from '../../testing/index.js';
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
function sampleDisk(size: number): Buffer {
  const disk = Buffer.alloc(size);
  seededBytes(1, 3 * MiB).copy(disk, MiB);
  seededBytes(2, 100 * KiB).copy(disk, 512 * MiB - 50 * KiB);
  seededBytes(3, Math.min(1000, size)).copy(disk, size - Math.min(1000, size));
  return disk;
}

/** Writes `bytes` to a new file at `path`, its zero 64 KiB pieces left as holes. */
async function writeSparse(path: string, bytes: Buffer): Promise<void> {
  const handle = await open(path, 'w');
  await handle.truncate(bytes.length);
  const zero = Buffer.alloc(64 * KiB);
  for (let at = 0; at < bytes.length; at += zero.length) {
    const piece = bytes.subarray(at, at + zero.length);
    if (!piece.equals(zero.subarray(0, piece.length))) await handle.write(piece, 0, piece.length, at);
  }
  await handle.close();
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
    for (let offset = 0; offset < size; offset += 256 * KiB) await target.write(offset, disk.subarray(offset, Math.min(size, offset + 256 * KiB)));
    await target.finish();
    // VHD sizes are whole sectors: an odd size reads back padded with zeros to the next one.
    const padded = Buffer.concat([disk, Buffer.alloc(Math.ceil(size / 512) * 512 - size)]);

    const info = JSON.parse((await run('qemu-img', ['info', '--output=json', '-f', 'vpc', path])).stdout) as { format: string; 'virtual-size': number };
    assert.equal(info.format, 'vpc');
    assert.equal(info['virtual-size'], padded.length, 'qemu takes the current size, not C×H×S');
    const raw = join(work, 'in.raw');
    await writeSparse(raw, padded);
    await run('qemu-img', ['compare', '-f', 'raw', '-F', 'vpc', raw, path]);
    const out = join(work, 'out.raw');
    await run('qemu-img', ['convert', '-f', 'vpc', '-O', 'raw', path, out]);
    assert.ok((await readFile(out)).equals(padded), 'qemu-img convert reads back what was written');
    if (has7zz) {
      const { stdout } = await run('7zz', ['e', '-so', path], { encoding: 'buffer', maxBuffer: 1024 * MiB });
      assert.ok(stdout.equals(padded), '7-Zip reads back what was written');
    }

    const image = await openDiskImage(path);
    assert.equal(image.size, padded.length);
    assert.ok(Buffer.from(await image.read(0, padded.length)).equals(padded), 'our reader reads back what was written');
    await image.close();
    const footer = parseVhdFooter((await readFile(path)).subarray(-512), { invalid: (m) => new CofferError('E_IMAGE_INVALID', m), unsupported: (m) => new CofferError('E_UNSUPPORTED_FORMAT', m) });
    assert.equal(footer.diskType, subformat);
    assert.deepEqual(footer.geometry, vhdGeometry(padded.length / 512));
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
