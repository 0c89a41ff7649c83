/**
 * The VMDK reader against qemu-img on real disks: every layout qemu-img writes, delta chains
 * (with and without zeroed grains), a stream-optimized file laid out as VMware writes it
 * (grain directory found through the footer), a hand-written descriptor mixing extent types,
 * a 5 GiB disk in three 2 GiB extents, and hostile files.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, open, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import type { Extent } from '../../blockdev/index.js';
import { isCofferError, type ErrorCode } from '../../errors/index.js';
import { buildExt4Disk, buildSparseDiskBeyond4G, deriveDisk, requireTools } from '../../testing/index.js';
import type { DiskImage } from '../disk-image.js';
import { detectFormat } from '../detect.js';
import { ImageFile } from '../image-file.js';
import { openDiskImage } from '../open-image.js';
import { assertPlacementsMatch } from '../placements.test-support.js';
import { VmdkImage } from './vmdk-image.js';

const run = promisify(execFile);
const KiB = 1024;
const MiB = 1024 * KiB;
const GRAIN = 64 * KiB;
/** A hang guard, not a speed target: the hand-written descriptor test reads 96 MiB through qemu-img and Coffer, 11.5 s on a loaded CI machine and past 30 s when other suites ran beside it. */
const LIMIT = { timeout: 120_000 };
let work: string;
/** A real GPT disk with ext4 and files, plus random data where grains and the disk end meet. */
let raw: string;
/** The same, 1536 bytes longer: the last grain is partial. */
let oddRaw: string;

before(async () => {
  await requireTools('qemu-img', 'qemu-io', 'sfdisk', 'mke2fs');
  work = await mkdtemp(join(tmpdir(), 'coffer-vmdk-'));
  const base = await buildExt4Disk({ name: 'vmdk-base', size: 96 * MiB, label: 'gpt', partitionSizeMiB: 64, files: 'small' });
  raw = await deriveDisk(base.path, 'vmdk-edited', [
    { offset: 70 * MiB + 12_345, bytes: 200_000 },
    { offset: 96 * MiB - 3 * GRAIN - 512, bytes: 2 * GRAIN },
  ]);
  oddRaw = await deriveDisk(raw, 'vmdk-odd', [{ offset: 96 * MiB, bytes: 1536 }]);
});
after(() => rm(work, { recursive: true, force: true }));

const qemuImg = (...args: string[]) => run('qemu-img', args, { maxBuffer: 64 * MiB });
const qemuIo = (image: string, ...commands: string[]) => run('qemu-io', ['-f', 'vmdk', ...commands.flatMap((c) => ['-c', c]), image]);
const at = (name: string) => join(work, name);

async function convert(source: string, name: string, subformat: string): Promise<string> {
  await qemuImg('convert', '-f', 'raw', '-O', 'vmdk', '-o', `subformat=${subformat}`, source, at(name));
  return at(name);
}

/** qemu-img's allocation map, in the terms of Extent: data/zero and which layer holds it. */
async function qemuExtents(path: string): Promise<Extent[]> {
  const { stdout } = await qemuImg('map', '-f', 'vmdk', '--output=json', path);
  const entries = JSON.parse(stdout) as { start: number; length: number; depth: number; present: boolean; data: boolean }[];
  return entries.map((e) => ({ offset: e.start, length: e.length, kind: e.data ? 'data' : 'zero', ...(e.data || e.present ? { layer: e.depth } : {}) }));
}

async function qemuMap(path: string): Promise<string[]> {
  return describe(await qemuExtents(path));
}

/**
 * The map of an image with flat extents against qemu-img's, which calls a flat extent data
 * throughout: ours may call the extent file's holes zero (they read as zeros, checked apart),
 * so every byte we call data qemu-img calls data in the same layer, and ours has fewer.
 */
async function assertRefinesQemuMap(path: string, ours: readonly Extent[]): Promise<void> {
  const theirs = await qemuExtents(path);
  for (const extent of ours) {
    if (extent.kind !== 'data') continue;
    for (const other of theirs) {
      if (other.offset >= extent.offset + extent.length || other.offset + other.length <= extent.offset) continue;
      assert.ok(other.kind === 'data' && other.layer === extent.layer, `${path}: data at ${extent.offset}+${extent.length} where qemu-img map says ${other.kind}@${other.layer ?? '-'} at ${other.offset}+${other.length}`);
    }
  }
  const dataBytes = (extents: readonly Extent[]) => extents.filter((e) => e.kind === 'data').reduce((sum, e) => sum + e.length, 0);
  assert.ok(dataBytes(ours) < dataBytes(theirs), `${path}: the flat extent's holes are not mapped as zeros (${dataBytes(ours)} data bytes, qemu-img ${dataBytes(theirs)})`);
}

/** Extents merged and printed `offset+length kind@layer`, for comparison. */
function describe(extents: Extent[]): string[] {
  const out: Extent[] = [];
  for (const e of extents) {
    const last = out[out.length - 1];
    if (last !== undefined && last.offset + last.length === e.offset && last.kind === e.kind && last.layer === e.layer) last.length += e.length;
    else out.push({ ...e });
  }
  return out.map((e) => `${e.offset}+${e.length} ${e.kind}@${e.layer ?? '-'}`);
}

async function collect(image: DiskImage, offset?: number, length?: number): Promise<Extent[]> {
  const extents: Extent[] = [];
  for await (const extent of image.extents(offset, length)) extents.push(extent);
  return extents;
}

/**
 * Opens `path` by content and checks it against qemu-img: the bytes (whole device, in 1 MiB
 * pieces), reads that straddle grain boundaries, zero extents reading as zeros, and the
 * allocation map. Returns the open image.
 */
async function assertMatchesQemu(path: string, options: { map?: boolean | 'flat' } = {}): Promise<DiskImage> {
  const file = await ImageFile.open(path);
  assert.equal(await detectFormat(file), 'vmdk', `${path}: detected by content`);
  await file.close();
  const image = await openDiskImage(path);
  assert.equal(image.format, 'vmdk');
  const expectedPath = at(`oracle-${Math.random().toString(36).slice(2)}.raw`);
  await qemuImg('convert', '-f', 'vmdk', '-O', 'raw', path, expectedPath);
  const expected = await readFile(expectedPath);
  await rm(expectedPath);
  assert.equal(image.size, expected.length, `${path}: size`);
  for (let offset = 0; offset < image.size; offset += MiB) {
    const length = Math.min(MiB, image.size - offset);
    const got = Buffer.from(await image.read(offset, length));
    if (!got.equals(expected.subarray(offset, offset + length))) assert.fail(`${path}: bytes at ${offset}..${offset + length} differ from qemu-img convert`);
  }
  for (let i = 0; i < 64; i++) {
    // Start a little before a grain boundary and run across a few grains.
    const grain = 1 + Math.floor(Math.random() * (image.size / GRAIN - 1));
    const offset = Math.max(0, grain * GRAIN - 1 - Math.floor(Math.random() * 4096));
    const length = Math.min(1 + Math.floor(Math.random() * 3 * GRAIN), image.size - offset);
    const got = Buffer.from(await image.read(offset, length));
    assert.ok(got.equals(expected.subarray(offset, offset + length)), `${path}: read ${offset}+${length}`);
  }
  const extents = await collect(image);
  let covered = 0;
  for (const extent of extents) {
    assert.equal(extent.offset, covered, `${path}: extents are ordered and contiguous`);
    covered += extent.length;
    if (extent.kind === 'zero') {
      const slice = expected.subarray(extent.offset, extent.offset + extent.length);
      assert.ok(slice.every((b) => b === 0), `${path}: zero extent at ${extent.offset} holds data`);
    }
  }
  assert.equal(covered, image.size);
  if (options.map === 'flat') await assertRefinesQemuMap(path, extents);
  else if (options.map !== false) assert.deepEqual(describe(extents), await qemuMap(path), `${path}: allocation differs from qemu-img map`);
  // Compressed grains must be read; everything else lies in the extent files of the chain.
  await assertPlacementsMatch(image, expected, { mayRead: true, label: path });
  return image;
}

const layouts = ['monolithicSparse', 'streamOptimized', 'monolithicFlat', 'twoGbMaxExtentSparse', 'twoGbMaxExtentFlat'];

for (const subformat of layouts) {
  test(`vmdk ${subformat}: reads like qemu-img, zero extents read as zeros, same allocation`, LIMIT, async () => {
    // A flat extent made from the sparse raw disk keeps its holes: mapped as zeros, unlike qemu-img map's all-data.
    const image = await assertMatchesQemu(await convert(raw, `${subformat}.vmdk`, subformat), subformat.endsWith('Flat') ? { map: 'flat' } : {});
    assert.equal((image as VmdkImage).createType, subformat);
    await image.close();
  });
}

test('vmdk sparse and stream-optimized disks whose last grain is partial', LIMIT, async () => {
  for (const subformat of ['monolithicSparse', 'streamOptimized']) {
    const image = await assertMatchesQemu(await convert(oddRaw, `odd-${subformat}.vmdk`, subformat));
    assert.equal(image.size, 96 * MiB + 1536);
    assert.deepEqual(Buffer.from(await image.read(image.size - 1536, 1536)), (await readFile(oddRaw)).subarray(-1536));
    await image.close();
  }
});

test('vmdk delta chain: unallocated grains come from the parent, extents name the layer', LIMIT, async () => {
  await convert(raw, 'chain0.vmdk', 'monolithicSparse');
  await qemuImg('create', '-f', 'vmdk', '-b', 'chain0.vmdk', '-F', 'vmdk', at('chain1.vmdk'));
  await qemuIo(at('chain1.vmdk'), 'write -P 0xa1 1M 64k', 'write -P 0xb2 3000k 100k', 'write -P 0xc3 95M 1M');
  await qemuImg('create', '-f', 'vmdk', '-b', at('chain1.vmdk'), '-F', 'vmdk', at('chain2.vmdk'));
  await qemuIo(at('chain2.vmdk'), 'write -P 0xd4 1M 4k');
  const image = await assertMatchesQemu(at('chain2.vmdk'));
  assert.equal(image.backing?.path, at('chain1.vmdk'));
  assert.equal(image.backing?.backing?.path, at('chain0.vmdk'));
  const data = new Map<number, number>();
  for (const e of await collect(image)) if (e.kind === 'data') data.set(e.layer ?? -1, (data.get(e.layer ?? -1) ?? 0) + e.length);
  assert.equal(data.get(0), GRAIN, 'the top holds the one grain its 4 KiB write touched');
  // chain1: 1M (1 grain, hidden by chain2), 3000k+100k (grains 46..48), 95M+1M (16 grains).
  assert.equal(data.get(1), 19 * GRAIN);
  assert.ok((data.get(2) ?? 0) > 4 * MiB, 'the base holds the filesystem');
  assert.deepEqual(Buffer.from(await image.read(1 * MiB + 4 * KiB, 4)), Buffer.alloc(4, 0xa1));
  await image.close();
});

test('vmdk delta with zeroed grains: they read as zeros over parent data, as layer 0 zero extents', LIMIT, async () => {
  await convert(raw, 'zbase.vmdk', 'monolithicSparse');
  await qemuImg('create', '-f', 'vmdk', '-o', 'zeroed_grain=on', '-b', 'zbase.vmdk', '-F', 'vmdk', at('zdelta.vmdk'));
  await qemuIo(at('zdelta.vmdk'), 'write -z 1M 128k', 'write -P 0x77 2M 64k');
  const image = await assertMatchesQemu(at('zdelta.vmdk'));
  assert.deepEqual(await collect(image, 1 * MiB, 128 * KiB), [{ offset: 1 * MiB, length: 128 * KiB, kind: 'zero', layer: 0 }]);
  assert.ok(Buffer.from(await image.read(1 * MiB, 128 * KiB)).every((b) => b === 0));
  assert.ok(!Buffer.from(await image.backing!.read(1 * MiB, 128 * KiB)).every((b) => b === 0), 'the parent has data there');
  await image.close();
});

test('vmdk stream-optimized laid out as VMware writes it: grain directory found through the footer', LIMIT, async () => {
  const stream = await readFile(await convert(raw, 'front-gd.vmdk', 'streamOptimized'));
  const path = at('footer.vmdk');
  await writeFile(path, withFooter(stream));
  const image = await assertMatchesQemu(path);
  assert.equal((image as VmdkImage).createType, 'streamOptimized');
  await image.close();
});

/** A stream-optimized file with gdOffset moved from the header to a footer, as VMware writes it. */
function withFooter(stream: Buffer): Buffer {
  const padded = Buffer.concat([stream, Buffer.alloc((512 - (stream.length % 512)) % 512)]);
  const header = Buffer.from(padded.subarray(0, 512));
  const footerMarker = Buffer.alloc(512);
  footerMarker.writeBigUInt64LE(1n, 0);
  footerMarker.writeUInt32LE(3, 12);
  const head = Buffer.from(padded);
  head.writeBigUInt64LE(0xffff_ffff_ffff_ffffn, 56);
  return Buffer.concat([head, footerMarker, header, Buffer.alloc(512)]);
}

test('vmdk hand-written descriptor: flat extents at offsets around a sparse extent', LIMIT, async () => {
  await symlink(raw, at('whole.raw'));
  await qemuImg('convert', '-O', 'vmdk', '--image-opts', `driver=raw,offset=${16 * MiB},size=${32 * MiB},file.driver=file,file.filename=${raw}`, at('middle.vmdk'));
  const sectors = (bytes: number) => bytes / 512;
  const descriptor = [
    '# Disk DescriptorFile',
    'version=1',
    'CID=12345678',
    'parentCID=ffffffff',
    'createType="twoGbMaxExtentSparse"',
    '',
    '# Extent description',
    `RW ${sectors(16 * MiB)} FLAT "whole.raw" 0`,
    `RW ${sectors(32 * MiB)} SPARSE "middle.vmdk"`,
    `RDONLY ${sectors(48 * MiB)} FLAT "whole.raw" ${sectors(48 * MiB)}`,
    '',
    'ddb.adapterType = "ide"',
  ].join('\r\n');
  await writeFile(at('mixed.vmdk'), descriptor);
  // qemu skips RDONLY extents: compare with it on an RW copy, then the RDONLY one with the raw.
  await writeFile(at('mixed-rw.vmdk'), descriptor.replace('RDONLY', 'RW'));
  await (await assertMatchesQemu(at('mixed-rw.vmdk'), { map: 'flat' })).close();
  const image = await openDiskImage(at('mixed.vmdk'));
  assert.equal(image.size, 96 * MiB);
  assert.ok(Buffer.from(await image.read(0, image.size)).equals(await readFile(raw)));
  await image.close();

  // ESXi's flat layout, checked against qemu-img.
  await writeFile(at('esxi.vmdk'), `# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="vmfs"\nRW ${sectors(96 * MiB)} VMFS "whole.raw"\n`);
  await (await assertMatchesQemu(at('esxi.vmdk'), { map: 'flat' })).close();
  // A descriptor that does not start with `# Disk DescriptorFile` (other comments, a line of
  // spaces, then version=): a VMDK for QEMU's probe, so for Coffer's, never a small raw disk.
  await writeFile(at('headless.vmdk'), `# written by a script\n   \nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="vmfs"\nRW ${sectors(96 * MiB)} VMFS "whole.raw"\n`);
  const probed = JSON.parse((await qemuImg('info', '--output=json', at('headless.vmdk'))).stdout) as { format: string };
  assert.equal(probed.format, 'vmdk', 'qemu-img probes it as a VMDK too');
  await (await assertMatchesQemu(at('headless.vmdk'), { map: 'flat' })).close();

  // A ZERO extent (qemu-img drops those lines, so the raw file is the oracle).
  const zero = `createType="monolithicFlat"\nRW ${sectors(16 * MiB)} FLAT "whole.raw" 0\nRW ${sectors(16 * MiB)} ZERO\n`;
  await writeFile(at('zero-extent.vmdk'), `# Disk DescriptorFile\n${zero}`);
  const zeroImage = await openDiskImage(at('zero-extent.vmdk'));
  // The flat part maps as the raw file's own data and holes; the ZERO extent as zeros.
  const rawImage = await openDiskImage(raw);
  const rawExtents = (await collect(rawImage, 0, 16 * MiB)).map((e) => ({ ...e, layer: 0 }));
  await rawImage.close();
  assert.deepEqual(describe(await collect(zeroImage)), describe([...rawExtents, { offset: 16 * MiB, length: 16 * MiB, kind: 'zero', layer: 0 }]));
  const expected = Buffer.concat([(await readFile(raw)).subarray(0, 16 * MiB), Buffer.alloc(16 * MiB)]);
  assert.ok(Buffer.from(await zeroImage.read(0, zeroImage.size)).equals(expected));
  await zeroImage.close();
});

test('vmdk grains stored one after the other are read with one file read', LIMIT, async () => {
  const image = await openDiskImage(await convert(raw, 'coalesce.vmdk', 'monolithicSparse'));
  const span = { offset: 70 * MiB, length: 3 * GRAIN }; // inside the random bytes at 70 MiB + 12 345; qemu-img stores grains in order
  assert.deepEqual(describe(await collect(image, span.offset, span.length)), [`${span.offset}+${span.length} data@0`]);
  const readAt = ImageFile.prototype.readAt;
  let calls = 0;
  ImageFile.prototype.readAt = function (this: ImageFile, ...args: Parameters<ImageFile['readAt']>) {
    calls++;
    return readAt.apply(this, args);
  };
  try {
    await image.read(span.offset + 100, span.length - 200); // grain tables are cached by the map above
  } finally {
    ImageFile.prototype.readAt = readAt;
  }
  assert.equal(calls, 1);
  await image.close();
});

test('vmdk 5 GiB disk in three 2 GiB sparse extents, data beyond 4 GiB', LIMIT, async () => {
  const big = await buildSparseDiskBeyond4G('vmdk-beyond4g');
  const path = await convert(big.path, 'big.vmdk', 'twoGbMaxExtentSparse');
  const image = await openDiskImage(path);
  assert.equal(image.size, 5 * 1024 * MiB);
  const extents = await collect(image);
  assert.deepEqual(describe(extents), await qemuMap(path));
  const source = await open(big.path, 'r');
  const compare = async (offset: number, length: number) => {
    const want = Buffer.alloc(length);
    await source.read(want, 0, length, offset);
    assert.ok(Buffer.from(await image.read(offset, length)).equals(want), `read ${offset}+${length}`);
  };
  for (const e of extents) if (e.kind === 'data') for (let o = e.offset; o < e.offset + e.length; o += 4 * MiB) await compare(o, Math.min(4 * MiB, e.offset + e.length - o));
  for (const boundary of [2, 4].map((g) => g * 1024 * MiB)) await compare(boundary - 5000, 10_000);
  await compare(big.partitions[0]!.start - 512, 8192);
  await source.close();
  await image.close();
});

/** Opens `path` and reads all of it and its map; expects a CofferError with `code` naming `mention`. */
async function assertRefused(path: string, code: ErrorCode, mention = path): Promise<void> {
  await assert.rejects(
    (async () => {
      const image = await openDiskImage(path);
      try {
        await collect(image);
        for (let offset = 0; offset < image.size; offset += 4 * MiB) await image.read(offset, Math.min(4 * MiB, image.size - offset));
      } finally {
        await image.close();
      }
    })(),
    (error) => isCofferError(error, code) && error.message.includes(mention),
    `${path}: expected ${code} naming ${mention}`,
  );
}

test('hostile and broken vmdk images are refused with the path named, never a hang', LIMIT, async () => {
  const sparse = await readFile(await convert(raw, 'good-sparse.vmdk', 'monolithicSparse'));
  const stream = await readFile(await convert(raw, 'good-stream.vmdk', 'streamOptimized'));
  const firstGrain = Number(stream.readBigUInt64LE(64)) * 512; // qemu-img puts grain 0.. right after overHead
  const sparseCases: { name: string; bytes: Buffer; code?: ErrorCode }[] = [
    { name: 'truncated to half', bytes: sparse.subarray(0, sparse.length / 2) },
    { name: 'truncated inside the header', bytes: sparse.subarray(0, 300) },
    { name: 'truncated in the grain directory', bytes: sparse.subarray(0, Number(sparse.readBigUInt64LE(56)) * 512 + 8) },
    { name: 'GD offset past EOF', bytes: patch(sparse, (b) => b.writeBigUInt64LE(BigInt(sparse.length), 56)) },
    { name: 'GD entry past EOF', bytes: patch(sparse, (b) => b.writeUInt32LE(0x7fff_ffff, Number(b.readBigUInt64LE(56)) * 512)) },
    { name: 'grain size 3 sectors', bytes: patch(sparse, (b) => b.writeBigUInt64LE(3n, 20)) },
    { name: '4096 entries per grain table', bytes: patch(sparse, (b) => b.writeUInt32LE(4096, 44)) },
    { name: 'capacity of 1 EiB', bytes: patch(sparse, (b) => b.writeBigUInt64LE(1n << 51n, 12)) },
    { name: 'newlines mangled', bytes: patch(sparse, (b) => b.writeUInt8(0x0a, 75)) },
    { name: 'version 4', bytes: patch(sparse, (b) => b.writeUInt32LE(4, 4)), code: 'E_UNSUPPORTED_FORMAT' },
    { name: 'corrupt deflate stream', bytes: patch(stream, (b) => b.fill(0x5a, firstGrain + 40, firstGrain + 90)) },
    { name: 'compressed grain of 4 GiB', bytes: patch(stream, (b) => b.writeUInt32LE(0xffff_ffff, firstGrain + 8)) },
    { name: 'grain marker for another grain', bytes: patch(stream, (b) => b.writeBigUInt64LE(b.readBigUInt64LE(firstGrain) + 128n, firstGrain)) },
    { name: 'footer missing', bytes: patch(stream, (b) => b.writeBigUInt64LE(0xffff_ffff_ffff_ffffn, 56)) },
  ];
  for (const { name, bytes, code } of sparseCases) {
    const path = at(`bad-${name.replace(/\W+/g, '-')}.vmdk`);
    await writeFile(path, bytes);
    await assertRefused(path, code ?? 'E_IMAGE_INVALID');
  }

  await writeFile(at('victim-flat.vmdk'), Buffer.alloc(MiB));
  const descriptorCases: { name: string; lines: string[]; code?: ErrorCode; mention?: string }[] = [
    { name: 'escapes with ..', lines: ['createType="monolithicFlat"', 'RW 8 FLAT "../../etc/passwd" 0'] },
    { name: 'absolute extent', lines: ['createType="monolithicFlat"', 'RW 8 FLAT "/etc/passwd" 0'] },
    { name: 'windows escape', lines: ['createType="monolithicFlat"', 'RW 8 FLAT "sub\\..\\..\\x" 0'] },
    { name: 'flat extent longer than its file', lines: ['createType="monolithicFlat"', 'RW 4096 FLAT "victim-flat.vmdk" 0'], mention: 'victim-flat.vmdk' },
    { name: 'flat extent as sparse', lines: ['createType="twoGbMaxExtentSparse"', 'RW 2048 SPARSE "victim-flat.vmdk"'], mention: 'victim-flat.vmdk' },
    { name: 'malformed extent line', lines: ['createType="monolithicFlat"', 'RW lots FLAT "victim-flat.vmdk" 0'] },
    { name: 'no createType', lines: ['RW 2048 FLAT "victim-flat.vmdk" 0'] },
    { name: 'parentCID without a parent', lines: ['parentCID=1234abcd', 'createType="monolithicFlat"', 'RW 2048 FLAT "victim-flat.vmdk" 0'] },
    { name: 'seSparse extent that is not one', lines: ['createType="seSparse"', 'RW 2048 SESPARSE "victim-flat.vmdk"'], mention: 'victim-flat.vmdk' },
    { name: 'vsanSparse', lines: ['createType="vsanSparse"', 'RW 2048 SPARSE "victim-flat.vmdk"'], code: 'E_UNSUPPORTED_FORMAT' },
  ];
  for (const { name, lines, code, mention } of descriptorCases) {
    const path = at(`bad-${name.replace(/\W+/g, '-')}.vmdk`);
    await writeFile(path, ['# Disk DescriptorFile', 'version=1', 'CID=fffffffe', ...lines, ''].join('\n'));
    await assertRefused(path, code ?? 'E_IMAGE_INVALID', mention === undefined ? path : at(mention));
  }
});

test('a vmdk delta whose parent changed after it was taken is refused (CID mismatch)', LIMIT, async () => {
  await convert(raw, 'cid-base.vmdk', 'monolithicSparse');
  await qemuImg('create', '-f', 'vmdk', '-b', 'cid-base.vmdk', '-F', 'vmdk', at('cid-delta.vmdk'));
  await qemuIo(at('cid-base.vmdk'), 'write -P 0x11 0 4k'); // gives the base a new CID
  await assertRefused(at('cid-delta.vmdk'), 'E_IMAGE_INVALID');
});

test('closing a vmdk closes every extent file and the parent', LIMIT, async () => {
  await convert(raw, 'close-base.vmdk', 'monolithicSparse');
  await qemuImg('create', '-f', 'vmdk', '-o', 'subformat=twoGbMaxExtentSparse', '-b', 'close-base.vmdk', '-F', 'vmdk', at('close-top.vmdk'));
  const image = await openDiskImage(at('close-top.vmdk'));
  const before = await openFiles();
  assert.ok(before.some((f) => f.endsWith('close-top-s001.vmdk')) && before.some((f) => f.endsWith('close-base.vmdk')));
  await image.close();
  await image.close();
  assert.deepEqual((await openFiles()).filter((f) => f.includes('close-')), []);
});

async function openFiles(): Promise<string[]> {
  const { stdout } = await run('sh', ['-c', `ls -l /proc/${process.pid}/fd | sed -n 's/.* -> //p'`]);
  return stdout.split('\n').filter(Boolean);
}

function patch(bytes: Buffer, change: (b: Buffer) => void): Buffer {
  const copy = Buffer.from(bytes);
  change(copy);
  return copy;
}
