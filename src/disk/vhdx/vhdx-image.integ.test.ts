/**
 * The VHDX reader against qemu-img on real images made from a real partitioned disk (GPT,
 * ext4 with files, random data straddling block boundaries).
 *
 * qemu-img 7.2 makes fixed and dynamic VHDXs but refuses differencing ones ("Backing file not
 * supported for file format 'vhdx'"), and QEMU's reader ignores parents. The differencing disk
 * here is therefore made by byte surgery on a qemu-made dynamic VHDX written by qemu-io
 * ({@link makeDifferencingVhdx}: HasParent, a parent locator, a sector bitmap block, partially
 * present blocks), and its expected bytes are the parent's with the child's sectors laid over.
 * The child is created with `block_state_zero=off`: by default qemu-img marks every block of a
 * new VHDX ZERO, which on a differencing disk hides the parent.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { isCofferError, type ErrorCode } from '../../errors/index.js';
import { buildExt4Disk, deriveDisk, makeDifferencingVhdx, requireTools, seededBytes, vhdxDataWriteGuid, vhdxMetadataItem, vhdxRegion, VHDX_BAT_GUID, VHDX_HEADERS, VHDX_METADATA_GUID, VHDX_REGION_TABLES } from '../../testing/index.js';
import type { DiskImage } from '../disk-image.js';
import { qemuImgRaw, readWholeImage } from '../image-oracle.test-support.js';
import { openDiskImage } from '../open-image.js';
import { assertPlacementsMatch } from '../placements.test-support.js';
import { crc32c } from './crc32c.js';
import { guidBytes } from './vhdx-guid.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const KiB = 1024;
let work: string;
let base: string; // raw: GPT + ext4 + random bytes across block boundaries

before(async () => {
  await requireTools('qemu-img', 'qemu-io', 'sfdisk', 'mke2fs');
  work = await mkdtemp(join(tmpdir(), 'coffer-vhdx-'));
  const disk = await buildExt4Disk({ name: 'vhdx-base', size: 96 * MiB, label: 'gpt', partitionSizeMiB: 64, files: 'small' });
  base = await deriveDisk(disk.path, 'vhdx-base-edited', [
    { offset: 64 * MiB - 100_000, bytes: 200_000, seed: 21 }, // across 1, 2, 4 … 64 MiB block boundaries
    { offset: 90 * MiB + 512, bytes: 512, seed: 22 }, // one sector alone in its block
  ]);
});
after(() => rm(work, { recursive: true, force: true }));

const qemuImg = (...args: string[]) => run('qemu-img', args, { maxBuffer: 64 * MiB });
const qemuIo = (image: string, ...commands: string[]) => run('qemu-io', ['-f', 'vhdx', ...commands.flatMap((c) => ['-c', c]), image]);

const qemuRaw = (image: string): Promise<Buffer> => qemuImgRaw(image, work, 'vhdx');
const readAll = readWholeImage;

/** Reads a whole image and checks it against `expected`: bytes per MiB, reads across blocks, extents. */
async function assertReads(path: string, expected: Buffer): Promise<DiskImage> {
  const image = await openDiskImage(path);
  assert.equal(image.format, 'vhdx', 'detected by content');
  assert.equal(image.size, expected.length);
  const all = await readAll(image);
  for (let at = 0; at < expected.length; at += MiB) {
    if (!all.subarray(at, at + MiB).equals(expected.subarray(at, at + MiB))) assert.fail(`${path}: MiB at ${at} differs from the oracle`);
  }
  const block = image.details?.['blockSize'] as number;
  for (let i = 0; i < 60; i++) {
    const boundary = Math.min(image.size - 1, block * (1 + Math.floor(Math.random() * Math.max(1, image.size / block - 1))));
    const offset = Math.max(0, boundary - Math.floor(Math.random() * 300_000));
    const length = Math.min(1 + Math.floor(Math.random() * 600_000), image.size - offset);
    assert.ok(Buffer.from(await image.read(offset, length)).equals(expected.subarray(offset, offset + length)), `read ${offset}+${length}`);
  }
  let covered = 0;
  for await (const extent of image.extents()) {
    assert.equal(extent.offset, covered, 'extents are ordered and contiguous');
    assert.ok(extent.length > 0);
    covered += extent.length;
    if (extent.kind === 'zero') {
      assert.ok(expected.subarray(extent.offset, extent.offset + extent.length).every((b) => b === 0), `zero extent at ${extent.offset} holds data`);
    }
  }
  assert.equal(covered, image.size, 'extents cover the disk, so every non-zero byte lies in a data extent');
  // Blocks a replayed log writes over must be read; the rest lies in the files of the chain.
  await assertPlacementsMatch(image, expected, { mayRead: true, label: path });
  return image;
}

async function dataRanges(image: DiskImage): Promise<[number, number][]> {
  const out: [number, number][] = [];
  for await (const e of image.extents()) if (e.kind === 'data') out.push([e.offset, e.length]);
  return out;
}

/**
 * Checks the data extents against `qemu-img map`, which reports VHDX coarsely: QEMU 7.2 calls
 * ZERO-state blocks data too (qemu-img convert writes all-zero blocks as ZERO, even in fixed
 * images), so every data extent must lie inside qemu's data, not the other way round.
 */
async function assertWithinQemuMap(image: DiskImage, path: string): Promise<void> {
  const { stdout } = await qemuImg('map', '-f', 'vhdx', '--output=json', path);
  const qemu = (JSON.parse(stdout) as { start: number; length: number; data: boolean }[]).filter((e) => e.data);
  for (const [offset, length] of await dataRanges(image)) {
    assert.ok(qemu.some((q) => q.start <= offset && offset + length <= q.start + q.length), `data extent ${offset}+${length} is data to qemu-img map too`);
  }
}

const CONVERTED: { name: string; options: string[] }[] = [
  { name: 'dynamic (default block size)', options: [] },
  { name: 'dynamic with 1 MiB blocks', options: ['-o', 'block_size=1M'] },
  { name: 'fixed', options: ['-o', 'subformat=fixed'] },
];

for (const { name, options } of CONVERTED) {
  test(`VHDX ${name} from qemu-img convert: bytes, reads across blocks, extents as qemu-img maps them`, async () => {
    const path = join(work, `${name.replace(/\W+/g, '-')}.vhdx`);
    await qemuImg('convert', '-f', 'raw', '-O', 'vhdx', ...options, base, path);
    const expected = await qemuRaw(path);
    assert.ok(expected.equals(await readFile(base)), 'qemu-img round trip');
    assert.ok(expected.subarray(64 * MiB - 100_000, 64 * MiB + 100_000).equals(seededBytes(21, 200_000)), 'random data straddles a block boundary');
    const image = await assertReads(path, expected);
    await assertWithinQemuMap(image, path);
    await image.close();
  });
}

test('VHDX written by qemu-io (1 MiB blocks, writes across blocks, zero writes): bytes and extents', async () => {
  const path = join(work, 'written.vhdx');
  await qemuImg('create', '-f', 'vhdx', '-o', 'block_size=1M', path, '24M');
  await qemuIo(path, 'write -P 0x5a 1020k 8k', 'write -P 0x11 20M 512', 'write -P 0x22 5M 3M', 'write -z 6M 1M');
  const expected = await qemuRaw(path);
  assert.equal(expected[1020 * KiB], 0x5a);
  const image = await assertReads(path, expected);
  assert.equal(image.details?.['blockSize'], MiB);
  await assertWithinQemuMap(image, path);
  await image.close();
});

// ---------------------------------------------------------------------------------------------
// Byte surgery helpers: field offsets per vhdx-header.ts, vhdx-region-table.ts, vhdx-metadata.ts
// (the regions, metadata items and header offsets: src/testing/vhdx-differencing.ts).

function resumHeader(b: Buffer, at: number): void {
  b.writeUInt32LE(crc32c(b.subarray(at, at + 4 * KiB), 4), at + 4);
}
function resumRegionTable(b: Buffer, at: number): void {
  b.writeUInt32LE(crc32c(b.subarray(at, at + 64 * KiB), 4), at + 4);
}
/** Writes both region tables from table 1 after `edit` changed table 1. */
function editRegions(b: Buffer, edit: (b: Buffer) => void): Buffer {
  edit(b);
  resumRegionTable(b, VHDX_REGION_TABLES[0]!);
  b.copy(b, VHDX_REGION_TABLES[1]!, VHDX_REGION_TABLES[0]!, VHDX_REGION_TABLES[0]! + 64 * KiB);
  return b;
}

test('hostile and broken VHDXs are refused with the path named, never a hang', async () => {
  const path0 = join(work, 'good.vhdx');
  await qemuImg('create', '-f', 'vhdx', '-o', 'block_size=1M', path0, '16M');
  await qemuIo(path0, 'write -P 0x77 0 3M');
  const good = await readFile(path0);
  const bat = vhdxRegion(good, VHDX_BAT_GUID).offset;
  const flip = (b: Buffer, at: number) => (b.writeUInt8((b.readUInt8(at) ^ 1) & 0xff, at), b);
  const blockSize = (value: number) => (b: Buffer) => (b.writeUInt32LE(value, vhdxMetadataItem(b, 'CAA16737-FA36-4D43-B3B6-33F0AA44E76B').at), b);
  const cases: { name: string; mutate: (b: Buffer) => Buffer; code: ErrorCode; says?: RegExp }[] = [
    { name: 'truncated to 900 KiB', mutate: (b) => b.subarray(0, 900 * KiB), code: 'E_IMAGE_INVALID' },
    { name: 'truncated in the data', mutate: (b) => b.subarray(0, b.length - MiB), code: 'E_IMAGE_INVALID' },
    { name: 'bad checksum on both headers', mutate: (b) => flip(flip(b, VHDX_HEADERS[0]! + 100), VHDX_HEADERS[1]! + 100), code: 'E_IMAGE_INVALID', says: /both VHDX headers/ },
    { name: 'both region tables damaged', mutate: (b) => flip(flip(b, VHDX_REGION_TABLES[0]! + 100), VHDX_REGION_TABLES[1]! + 100), code: 'E_IMAGE_INVALID', says: /region tables/ },
    { name: 'BAT entry past the end', mutate: (b) => (b.writeBigUInt64LE((4096n << 20n) | 6n, bat), b), code: 'E_IMAGE_INVALID', says: /block 0/ },
    { name: 'BAT entry inside the headers', mutate: (b) => (b.writeBigUInt64LE(6n, bat), b), code: 'E_IMAGE_INVALID', says: /block 0/ },
    { name: 'BAT entry state 5', mutate: (b) => (b.writeBigUInt64LE(5n, bat + 8), b), code: 'E_IMAGE_INVALID', says: /state 5/ },
    { name: 'partially present block on a dynamic disk', mutate: (b) => (b.writeBigUInt64LE(b.readBigUInt64LE(bat) | 7n, bat), b), code: 'E_IMAGE_INVALID', says: /partially/ },
    { name: 'block size 3 MiB', mutate: blockSize(3 * MiB), code: 'E_IMAGE_INVALID', says: /block size/ },
    { name: 'block size 1 GiB', mutate: blockSize(1024 * MiB), code: 'E_IMAGE_INVALID', says: /block size/ },
    { name: 'block size 0', mutate: blockSize(0), code: 'E_IMAGE_INVALID', says: /block size/ },
    { name: 'logical sector size 1024', mutate: (b) => (b.writeUInt32LE(1024, vhdxMetadataItem(b, '8141BF1D-A96F-4709-BA47-F233A8FAAB5F').at), b), code: 'E_IMAGE_INVALID', says: /sector size/ },
    { name: 'virtual size 128 TiB', mutate: (b) => (b.writeBigUInt64LE(1n << 47n, vhdxMetadataItem(b, '2FA54224-CD1B-4876-B211-5DBED83BF4B8').at), b), code: 'E_IMAGE_INVALID', says: /64 TiB/ },
    { name: 'virtual size larger than the BAT', mutate: (b) => (b.writeBigUInt64LE(1n << 45n, vhdxMetadataItem(b, '2FA54224-CD1B-4876-B211-5DBED83BF4B8').at), b), code: 'E_IMAGE_INVALID', says: /BAT/ },
    { name: 'metadata signature gone', mutate: (b) => (b.write('xxxxxxxx', vhdxRegion(b, VHDX_METADATA_GUID).offset, 'latin1'), b), code: 'E_IMAGE_INVALID', says: /metadata/ },
    { name: 'BAT region past the end', mutate: (b) => editRegions(b, (c) => c.writeBigUInt64LE(1n << 40n, vhdxRegion(c, VHDX_BAT_GUID).entry + 16)), code: 'E_IMAGE_INVALID', says: /past the end/ },
    { name: 'BAT region over the headers', mutate: (b) => editRegions(b, (c) => c.writeBigUInt64LE(0n, vhdxRegion(c, VHDX_BAT_GUID).entry + 16)), code: 'E_IMAGE_INVALID', says: /headers/ },
    { name: 'BAT region over the metadata', mutate: (b) => editRegions(b, (c) => c.writeBigUInt64LE(BigInt(vhdxRegion(c, VHDX_METADATA_GUID).offset), vhdxRegion(c, VHDX_BAT_GUID).entry + 16)), code: 'E_IMAGE_INVALID', says: /overlap/ },
    {
      name: 'unknown required region',
      mutate: (b) =>
        editRegions(b, (c) => {
          const count = c.readUInt32LE(VHDX_REGION_TABLES[0]! + 8);
          const entry = VHDX_REGION_TABLES[0]! + 16 + count * 32;
          guidBytes('11111111-2222-3333-4444-555555555555').copy(c, entry);
          c.writeBigUInt64LE(BigInt(vhdxRegion(c, VHDX_METADATA_GUID).offset + MiB), entry + 16);
          c.writeUInt32LE(MiB, entry + 24);
          c.writeUInt32LE(1, entry + 28);
          c.writeUInt32LE(count + 1, VHDX_REGION_TABLES[0]! + 8);
        }),
      code: 'E_UNSUPPORTED_FORMAT',
      says: /required VHDX region/,
    },
    {
      name: 'log past the end of the file',
      mutate: (b) => {
        for (const at of VHDX_HEADERS) (guidBytes('01234567-89AB-CDEF-0123-456789ABCDEF').copy(b, at + 48), b.writeBigUInt64LE(1n << 40n, at + 72), resumHeader(b, at));
        return b;
      },
      code: 'E_IMAGE_INVALID',
      says: /log/,
    },
  ];
  for (const { name, mutate, code, says } of cases) {
    const path = join(work, `bad-${name.replace(/\W+/g, '-')}.vhdx`);
    await writeFile(path, mutate(Buffer.from(good)));
    await assert.rejects(
      (async () => {
        const image = await openDiskImage(path);
        try {
          await readAll(image);
          for await (const _ of image.extents());
        } finally {
          await image.close();
        }
      })(),
      (error) => {
        assert.ok(isCofferError(error, code), `${name}: ${String(error)}`);
        assert.ok(error.message.includes(path), `${name}: ${error.message}`);
        if (says !== undefined) assert.match(error.message, says, name);
        return true;
      },
      name,
    );
  }
});

test('one damaged header or region table with the other whole still opens and reads the same', async () => {
  const path0 = join(work, 'one-bad.vhdx');
  await qemuImg('create', '-f', 'vhdx', '-o', 'block_size=1M', path0, '8M');
  await qemuIo(path0, 'write -P 0x31 1M 1M');
  const expected = await qemuRaw(path0);
  const good = await readFile(path0);
  for (const [i, at] of [...VHDX_HEADERS, ...VHDX_REGION_TABLES].entries()) {
    const path = join(work, `one-bad-${i}.vhdx`);
    const b = Buffer.from(good);
    b.writeUInt8(b.readUInt8(at + 200) ^ 0xff, at + 200);
    await writeFile(path, b);
    const image = await assertReads(path, expected);
    await image.close();
  }
});

// ---------------------------------------------------------------------------------------------
// A differencing VHDX by byte surgery (qemu-img cannot make one): makeDifferencingVhdx.

test('differencing VHDX (made by byte surgery): sectors not in the child come from the parent, layers named', async () => {
  const parent = join(work, 'parent.vhdx');
  await qemuImg('convert', '-f', 'raw', '-O', 'vhdx', '-o', 'block_size=1M', base, parent);
  const parentBytes = await qemuRaw(parent);
  const child = join(work, 'child.vhdx');
  await qemuImg('create', '-f', 'vhdx', '-o', 'block_size=1M,block_state_zero=off', child, String(parentBytes.length));
  const writes = [
    { pattern: 0xa1, offset: MiB, length: 64 * KiB },
    { pattern: 0xb2, offset: 4 * MiB - 4096, length: 8192 }, // across a block boundary
    { pattern: 0xc3, offset: 64 * MiB + 512, length: 512 }, // inside the parent's random data
  ];
  await qemuIo(child, ...writes.map((w) => `write -P 0x${w.pattern.toString(16)} ${w.offset} ${w.length}`));
  const linkage = `{${vhdxDataWriteGuid(await readFile(parent)).toLowerCase()}}`;
  await makeDifferencingVhdx(child, { parent_linkage: linkage, relative_path: `.\\${basename(parent)}`, absolute_win32_path: `C:\\VMs\\${basename(parent)}` }, writes);
  const expected = Buffer.from(parentBytes);
  for (const w of writes) expected.fill(w.pattern, w.offset, w.offset + w.length);
  const image = await assertReads(child, expected);
  assert.equal(image.backing?.format, 'vhdx');
  const layers = new Map<number, number>();
  for await (const e of image.extents()) if (e.kind === 'data' && e.layer !== undefined) layers.set(e.layer, (layers.get(e.layer) ?? 0) + e.length);
  assert.equal(layers.get(0), 64 * KiB + 8192 + 512, 'the child holds exactly the sectors written');
  assert.ok((layers.get(1) ?? 0) > 4 * MiB, 'the parent holds the filesystem');
  await image.close();

  // The parent found by the absolute path's file name beside the child when the relative one is wrong.
  const moved = join(work, 'child-abs.vhdx');
  await qemuImg('create', '-f', 'vhdx', '-o', 'block_size=1M,block_state_zero=off', moved, String(parentBytes.length));
  await makeDifferencingVhdx(moved, { parent_linkage: linkage, relative_path: '.\\nowhere.vhdx', absolute_win32_path: `D:\\x\\${basename(parent)}` }, []);
  const again = await assertReads(moved, parentBytes);
  await again.close();

  // A parent with another data write GUID is refused; a missing one is unreadable.
  const wrong = join(work, 'child-wrong.vhdx');
  await qemuImg('create', '-f', 'vhdx', '-o', 'block_size=1M', wrong, String(parentBytes.length));
  await makeDifferencingVhdx(wrong, { parent_linkage: '{00000000-1111-2222-3333-444444444444}', relative_path: basename(parent) }, []);
  await assert.rejects(openDiskImage(wrong), (e) => isCofferError(e, 'E_IMAGE_INVALID') && e.message.includes(wrong) && /data write GUID/.test(e.message));
  const orphan = join(work, 'child-orphan.vhdx');
  await qemuImg('create', '-f', 'vhdx', '-o', 'block_size=1M', orphan, String(parentBytes.length));
  await makeDifferencingVhdx(orphan, { parent_linkage: linkage, relative_path: 'missing.vhdx' }, []);
  await assert.rejects(openDiskImage(orphan), (e) => isCofferError(e, 'E_SOURCE_UNREADABLE') && e.message.includes('missing.vhdx'));
});

// Random damage aimed at the structures, with the checksums made right again so the parsers
// past them are reached (the general fuzz test mostly hits the file type identifier).
test('structure fuzz: damaged headers, region tables, metadata and BAT read or fail with a coded error', async () => {
  const path0 = join(work, 'fuzz-base.vhdx');
  await qemuImg('create', '-f', 'vhdx', '-o', 'block_size=1M', path0, '12M');
  await qemuIo(path0, 'write -P 0x42 0 2M', 'write -P 0x43 7M 512');
  const good = await readFile(path0);
  const meta = vhdxRegion(good, VHDX_METADATA_GUID).offset;
  const bat = vhdxRegion(good, VHDX_BAT_GUID).offset;
  const targets = [
    [VHDX_HEADERS[0]!, 80],
    [VHDX_REGION_TABLES[0]!, 16 + 3 * 32],
    [meta, 32 + 6 * 32],
    [meta + 64 * KiB, 64],
    [bat, 16 * 8],
  ] as const;
  let state = 12345;
  const next = () => ((state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const path = join(work, 'fuzz.vhdx');
  const coded = ['E_IMAGE_INVALID', 'E_UNSUPPORTED_FORMAT', 'E_SOURCE_UNREADABLE'] as const;
  for (let runs = 0; runs < 150; runs++) {
    const b = Buffer.from(good);
    for (let i = 1 + Math.floor(next() * 4); i > 0; i--) {
      const [start, span] = targets[Math.floor(next() * targets.length)]!;
      b[start + Math.floor(next() * span)] = next() < 0.3 ? 0xff : Math.floor(next() * 256);
    }
    resumHeader(b, VHDX_HEADERS[0]!);
    b.copy(b, VHDX_HEADERS[1]!, VHDX_HEADERS[0]!, VHDX_HEADERS[0]! + 4 * KiB);
    resumRegionTable(b, VHDX_REGION_TABLES[0]!);
    b.copy(b, VHDX_REGION_TABLES[1]!, VHDX_REGION_TABLES[0]!, VHDX_REGION_TABLES[0]! + 64 * KiB);
    await writeFile(path, b);
    try {
      const image = await openDiskImage(path);
      try {
        assert.ok(image.size <= 64 * 2 ** 40);
        const length = Math.min(image.size, 4 * MiB);
        if (length > 0) await image.read(0, length);
        for await (const _ of image.extents(0, length));
      } finally {
        await image.close();
      }
    } catch (error) {
      if (!coded.some((code) => isCofferError(error, code))) assert.fail(`run ${runs}: ${error instanceof Error ? error.stack : String(error)}`);
    }
  }
});

test('differencing VHDX with 4096-byte logical sectors: one bitmap bit per 4 KiB', async () => {
  const parent = join(work, 'parent4k.vhdx');
  await qemuImg('create', '-f', 'vhdx', '-o', 'block_size=1M', parent, '16M');
  await qemuIo(parent, 'write -P 0x10 0 16M');
  const child = join(work, 'child4k.vhdx');
  await qemuImg('create', '-f', 'vhdx', '-o', 'block_size=1M,block_state_zero=off', child, '16M');
  const writes = [
    { pattern: 0xd4, offset: 4096, length: 4096 },
    { pattern: 0xe5, offset: 3 * MiB - 8192, length: 16384 },
  ];
  await qemuIo(child, ...writes.map((w) => `write -P 0x${w.pattern.toString(16)} ${w.offset} ${w.length}`));
  await makeDifferencingVhdx(child, { parent_linkage: `{${vhdxDataWriteGuid(await readFile(parent))}}`, relative_path: basename(parent) }, writes, 4096);
  const expected = Buffer.alloc(16 * MiB, 0x10);
  for (const w of writes) expected.fill(w.pattern, w.offset, w.offset + w.length);
  const image = await assertReads(child, expected);
  assert.equal(image.details?.['logicalSectorSize'], 4096);
  assert.equal((await dataRanges(image)).reduce((sum, [, length]) => sum + length, 0), 16 * MiB, 'all data, from one layer or the other');
  let top = 0;
  for await (const e of image.extents()) if (e.layer === 0) top += e.length;
  assert.equal(top, 4096 + 16384);
  await image.close();
});

// qemu-img leaves no dirty log behind (even `qemu-io -c abort` finds it replayed and cleared),
// so one is made from the last entry qemu left in the log: the headers get that entry's log
// GUID back and the BAT sector the entry holds is wiped in place; replay must restore it.
test('a VHDX whose log needs replay is replayed in memory, never written, and reads as qemu-img repairs it', async () => {
  const path = join(work, 'dirty.vhdx');
  await qemuImg('create', '-f', 'vhdx', '-o', 'block_size=1M', path, '16M');
  await qemuIo(path, 'write -P 0x61 0 3M', 'write -P 0x62 9M 4k');
  const expected = await qemuRaw(path);
  const b = await readFile(path);
  // qemu writes each metadata update as a one-entry sequence under a new log GUID, one after
  // the other in the log: the last one (highest sequence number) holds the BAT as it ends.
  const logStart = Number(b.readBigUInt64LE(VHDX_HEADERS[0]! + 72));
  let logOffset = -1;
  for (let at = logStart; at < logStart + MiB; at += 4096) {
    if (b.toString('latin1', at, at + 4) !== 'loge') continue;
    if (logOffset < 0 || b.readBigUInt64LE(at + 16) > b.readBigUInt64LE(logOffset + 16)) logOffset = at;
  }
  assert.ok(logOffset >= 0, 'qemu left log entries');
  const logGuid = b.subarray(logOffset + 32, logOffset + 48);
  const descriptors = b.readUInt32LE(logOffset + 24);
  const wiped: number[] = [];
  for (let i = 0; i < descriptors; i++) {
    const d = logOffset + 64 + i * 32;
    if (b.toString('latin1', d, d + 4) !== 'desc') continue;
    const at = Number(b.readBigUInt64LE(d + 16));
    b.fill(0, at, at + 4096);
    wiped.push(at);
  }
  assert.ok(wiped.includes(vhdxRegion(b, VHDX_BAT_GUID).offset), 'the entry holds the first BAT sector');
  for (const at of VHDX_HEADERS) (logGuid.copy(b, at + 48), resumHeader(b, at));
  await writeFile(path, b);

  const image = await assertReads(path, expected);
  assert.equal(image.details?.['logReplayed'], true);
  await image.close();
  assert.ok((await readFile(path)).equals(b), 'the source is never written');

  const repaired = join(work, 'dirty-repaired.vhdx');
  await copyFile(path, repaired);
  await qemuImg('check', '-r', 'all', '-f', 'vhdx', repaired).catch(() => undefined);
  assert.ok((await qemuRaw(repaired)).equals(expected), 'qemu-img replays the same log to the same bytes');

  // An entry whose checksum fails is no sequence: nothing is replayed, the wiped BAT reads as absent blocks.
  const broken = join(work, 'dirty-broken.vhdx');
  const c = Buffer.from(b);
  c[logOffset + 100] = (c[logOffset + 100] as number) ^ 0xff;
  await writeFile(broken, c);
  const unreplayed = await openDiskImage(broken);
  assert.equal(unreplayed.details?.['logReplayed'], false);
  assert.ok(Buffer.from(await unreplayed.read(0, MiB)).every((x) => x === 0));
  await unreplayed.close();

  // Random damage to the entry, its checksum made right again: replayed or a coded error.
  let state = 777;
  const next = () => ((state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const fuzzed = join(work, 'dirty-fuzz.vhdx');
  const entryLength = b.readUInt32LE(logOffset + 8);
  for (let runs = 0; runs < 100; runs++) {
    const f = Buffer.from(b);
    for (let i = 1 + Math.floor(next() * 3); i > 0; i--) {
      const at = logOffset + (next() < 0.7 ? Math.floor(next() * 128) : 4096 + Math.floor(next() * 16));
      f[at] = next() < 0.3 ? 0xff : Math.floor(next() * 256);
    }
    const length = Math.min(f.readUInt32LE(logOffset + 8), MiB - (logOffset - logStart));
    if (length > 0 && length === entryLength) f.writeUInt32LE(crc32c(f.subarray(logOffset, logOffset + length), 4), logOffset + 4);
    await writeFile(fuzzed, f);
    try {
      const image = await openDiskImage(fuzzed);
      try {
        await image.read(0, image.size);
        for await (const _ of image.extents());
      } finally {
        await image.close();
      }
    } catch (error) {
      if (!isCofferError(error, 'E_IMAGE_INVALID') && !isCofferError(error, 'E_UNSUPPORTED_FORMAT')) assert.fail(`log fuzz run ${runs}: ${error instanceof Error ? error.stack : String(error)}`);
    }
  }

  // A log saying the file was longer than it is: truncated after the log was written.
  const short = join(work, 'dirty-short.vhdx');
  const t = Buffer.from(b);
  t.writeBigUInt64LE(1n << 40n, logOffset + 48);
  t.writeUInt32LE(crc32c(t.subarray(logOffset, logOffset + t.readUInt32LE(logOffset + 8)), 4), logOffset + 4);
  await writeFile(short, t);
  await assert.rejects(openDiskImage(short), (e) => isCofferError(e, 'E_IMAGE_INVALID') && e.message.includes(short) && /truncated/.test(e.message));
});
