import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, open, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { isCofferError } from '../../errors/index.js';
import { buildExt4Disk, requireTools, seededBytes } from '../../testing/index.js';
import type { Extent } from '../../blockdev/index.js';
import type { DiskImage } from '../disk-image.js';
import { openDiskImage } from '../open-image.js';
import { assertPlacementsMatch } from '../placements.test-support.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
let work: string;
let base: string; // a real GPT disk with ext4 and files

before(async () => {
  await requireTools('qemu-img', 'qemu-io', 'sfdisk', 'mke2fs');
  work = await mkdtemp(join(tmpdir(), 'coffer-qcow2-'));
  base = (await buildExt4Disk({ name: 'qcow2-base', size: 96 * MiB, label: 'gpt', partitionSizeMiB: 64, files: 'small' })).path;
});
after(() => rm(work, { recursive: true, force: true }));

const qemuImg = (...args: string[]) => run('qemu-img', args, { maxBuffer: 64 * MiB });
const qemuIo = (image: string, ...commands: string[]) => run('qemu-io', ['-f', 'qcow2', ...commands.flatMap((c) => ['-c', c]), image]);

/** What qemu-img reads from the image, as a raw file. */
async function qemuRaw(image: string): Promise<Buffer> {
  const out = join(work, `oracle-${Math.random().toString(36).slice(2)}.raw`);
  await qemuImg('convert', '-O', 'raw', image, out);
  const bytes = await readFile(out);
  await rm(out);
  return bytes;
}

async function readAll(image: DiskImage): Promise<Buffer> {
  const out = Buffer.alloc(image.size);
  for (let offset = 0; offset < image.size; offset += 4 * MiB) {
    const length = Math.min(4 * MiB, image.size - offset);
    await image.read(offset, length, out.subarray(offset, offset + length));
  }
  return out;
}

/** qemu-img map's ranges as extents: data or zero, and the layer that holds them (none when no layer does). */
async function qemuMap(path: string): Promise<string[]> {
  const { stdout } = await run('qemu-img', ['map', '--output=json', path]);
  const entries = JSON.parse(stdout) as { start: number; length: number; depth: number; present: boolean; data: boolean }[];
  return describeExtents(entries.map((e) => ({ offset: e.start, length: e.length, kind: e.data ? 'data' : 'zero', ...(e.data || e.present ? { layer: e.depth } : {}) })));
}

/** Extents merged where they continue each other, as `offset+length kind@layer`. */
function describeExtents(extents: readonly Extent[]): string[] {
  const out: Extent[] = [];
  for (const e of extents) {
    const last = out[out.length - 1];
    if (last !== undefined && last.offset + last.length === e.offset && last.kind === e.kind && last.layer === e.layer) last.length += e.length;
    else out.push({ offset: e.offset, length: e.length, kind: e.kind, ...(e.layer === undefined ? {} : { layer: e.layer }) });
  }
  return out.map((e) => `${e.offset}+${e.length} ${e.kind}@${e.layer ?? '-'}`);
}

/** Checks a reader against qemu-img: bytes, random reads, an extent map whose zeros read as zeros and that says what qemu-img map says. */
async function assertMatchesQemu(path: string, expectedFormat = 'qcow2'): Promise<DiskImage> {
  const image = await openDiskImage(path);
  assert.equal(image.format, expectedFormat);
  const expected = await qemuRaw(path);
  assert.equal(image.size, expected.length);
  assert.ok((await readAll(image)).equals(expected), `${path}: bytes differ from qemu-img convert`);
  for (let i = 0; i < 50; i++) {
    const offset = Math.floor(Math.random() * (image.size - 1));
    const length = Math.min(1 + Math.floor(Math.random() * 300_000), image.size - offset);
    assert.ok(Buffer.from(await image.read(offset, length)).equals(expected.subarray(offset, offset + length)), `read ${offset}+${length}`);
  }
  let covered = 0;
  const extents: Extent[] = [];
  for await (const extent of image.extents()) {
    assert.equal(extent.offset, covered);
    covered += extent.length;
    extents.push(extent);
    if (extent.kind === 'zero') assert.ok(expected.subarray(extent.offset, extent.offset + extent.length).every((b) => b === 0), `zero extent at ${extent.offset} holds data`);
  }
  assert.equal(covered, image.size);
  assert.deepEqual(describeExtents(extents), await qemuMap(path), `${path}: the extent map differs from qemu-img map (kind and layer of every range)`);
  // Compressed clusters must be read; everything else lies in the files of the chain.
  await assertPlacementsMatch(image, expected, { mayRead: true, label: path });
  return image;
}

const variants: { name: string; options: string[] }[] = [
  { name: 'v3', options: ['-o', 'compat=1.1'] },
  { name: 'v2', options: ['-o', 'compat=0.10'] },
  { name: 'compressed zlib', options: ['-c'] },
  { name: 'compressed zstd', options: ['-c', '-o', 'compression_type=zstd'] },
  { name: 'extended L2', options: ['-o', 'extended_l2=on,cluster_size=128k'] },
  { name: '4 KiB clusters', options: ['-o', 'cluster_size=4k'] },
  { name: '2 MiB clusters', options: ['-o', 'cluster_size=2M'] },
];

for (const variant of variants) {
  test(`qcow2 ${variant.name}: reads like qemu-img, and its zero extents read as zeros`, async () => {
    const path = join(work, `${variant.name.replace(/\W+/g, '-')}.qcow2`);
    await qemuImg('convert', '-f', 'raw', '-O', 'qcow2', ...variant.options, base, path);
    const image = await assertMatchesQemu(path);
    await image.close();
  });
}

test('qcow2 three-layer chain with writes and zeroing in each layer, extents name the layer', async () => {
  const layer0 = join(work, 'chain0.qcow2');
  const layer1 = join(work, 'chain1.qcow2');
  const layer2 = join(work, 'chain2.qcow2');
  await qemuImg('convert', '-f', 'raw', '-O', 'qcow2', base, layer0);
  await qemuImg('create', '-f', 'qcow2', '-b', 'chain0.qcow2', '-F', 'qcow2', layer1);
  await qemuIo(layer1, 'write -P 0xa1 10M 1M', 'write -z 2M 64k', 'write -P 0xb2 90M 64k');
  await qemuImg('create', '-f', 'qcow2', '-o', 'extended_l2=on', '-b', layer1, '-F', 'qcow2', layer2);
  await qemuIo(layer2, 'write -P 0xc3 10M 4k', 'write -z 10752k 64k', 'write -P 0xd4 40M 8k');
  const image = await assertMatchesQemu(layer2);
  const layers = new Map<number, number>();
  for await (const extent of image.extents()) if (extent.layer !== undefined && extent.kind === 'data') layers.set(extent.layer, (layers.get(extent.layer) ?? 0) + extent.length);
  // Top (extended L2, 2 KiB subclusters): the 4 KiB and 8 KiB writes exactly.
  assert.equal(layers.get(0), 12 * 1024);
  // Middle: its 1 MiB and 64 KiB writes, less the 4 KiB and 64 KiB the top layer covers.
  assert.equal(layers.get(1), MiB + 64 * 1024 - 4 * 1024 - 64 * 1024);
  assert.ok((layers.get(2) ?? 0) > 4 * MiB, 'the base holds the filesystem');
  await image.close();
});

test('a raw backing file and a backing file smaller than the overlay', async () => {
  const small = join(work, 'small-base.raw');
  await writeFile(small, seededBytes(3, 3 * MiB));
  const overlay = join(work, 'over-raw.qcow2');
  await qemuImg('create', '-f', 'qcow2', '-b', small, '-F', 'raw', overlay, '8M');
  await qemuIo(overlay, 'write -P 0x55 2M 2M');
  const image = await assertMatchesQemu(overlay);
  assert.equal(image.backing?.format, 'raw');
  await image.close();
});

test('hostile and broken qcow2 images are refused with the path named, never a hang', async () => {
  const good = join(work, 'good.qcow2');
  await qemuImg('convert', '-f', 'raw', '-O', 'qcow2', base, good);
  const bytes = await readFile(good);
  const cases: { name: string; mutate: (b: Buffer) => Buffer; code: 'E_IMAGE_INVALID' | 'E_UNSUPPORTED_FORMAT' }[] = [
    { name: 'truncated in the L1 table', mutate: (b) => b.subarray(0, b.readUInt32BE(44) + 8), code: 'E_IMAGE_INVALID' },
    { name: 'truncated in its data (the last tenth cut)', mutate: (b) => b.subarray(0, Math.floor(b.length * 0.9)), code: 'E_IMAGE_INVALID' },
    { name: 'cluster_bits 40', mutate: (b) => (b.writeUInt32BE(40, 20), b), code: 'E_IMAGE_INVALID' },
    { name: 'L1 table past the end', mutate: (b) => (b.writeBigUInt64BE(1n << 40n, 40), b), code: 'E_IMAGE_INVALID' },
    { name: 'L1 too small for the size', mutate: (b) => (b.writeUInt32BE(0, 36), b), code: 'E_IMAGE_INVALID' },
    { name: 'absurd virtual size', mutate: (b) => (b.writeBigUInt64BE(1n << 62n, 24), b), code: 'E_IMAGE_INVALID' },
    { name: 'encrypted', mutate: (b) => (b.writeUInt32BE(1, 32), b), code: 'E_UNSUPPORTED_FORMAT' },
    { name: 'version 4', mutate: (b) => (b.writeUInt32BE(4, 4), b), code: 'E_UNSUPPORTED_FORMAT' },
    { name: 'external data file bit', mutate: (b) => (b.writeBigUInt64BE(4n, 72), b), code: 'E_UNSUPPORTED_FORMAT' },
  ];
  for (const { name, mutate, code } of cases) {
    const path = join(work, `bad-${name.replace(/\W+/g, '-')}.qcow2`);
    await writeFile(path, mutate(Buffer.from(bytes)));
    await assert.rejects(
      (async () => {
        const image = await openDiskImage(path);
        try {
          await readAll(image);
        } finally {
          await image.close();
        }
      })(),
      (error) => isCofferError(error, code) && error.message.includes(path),
      name,
    );
  }
});

test('a backing chain that loops back on itself is refused', async () => {
  const a = join(work, 'loop-a.qcow2');
  const b = join(work, 'loop-b.qcow2');
  await qemuImg('create', '-f', 'qcow2', a, '1M');
  await qemuImg('create', '-f', 'qcow2', '-b', a, '-F', 'qcow2', b);
  // Point a's backing at b by rewriting its header: backing name right after the header.
  const bytes = await readFile(a);
  const name = Buffer.from(b);
  const at = 1024;
  name.copy(bytes, at);
  bytes.writeBigUInt64BE(BigInt(at), 8);
  bytes.writeUInt32BE(name.length, 16);
  await writeFile(a, bytes);
  await assert.rejects(openDiskImage(b), (error) => isCofferError(error, 'E_IMAGE_INVALID') && /loops/.test(error.message));
});

test('a qcow2 L2 entry pointing past the end of the file is refused', async () => {
  const path = join(work, 'bad-l2.qcow2');
  await qemuImg('convert', '-f', 'raw', '-O', 'qcow2', base, path);
  const handle = await open(path, 'r+');
  const header = Buffer.alloc(48);
  await handle.read(header, 0, 48, 0);
  const l1Offset = Number(header.readBigUInt64BE(40));
  const l1Entry = Buffer.alloc(8);
  await handle.read(l1Entry, 0, 8, l1Offset);
  const l2Offset = Number(l1Entry.readBigUInt64BE(0) & 0x00ff_ffff_ffff_fe00n);
  const entry = Buffer.alloc(8);
  entry.writeBigUInt64BE((1n << 63n) | (1n << 45n)); // far past the end of the file
  await handle.write(entry, 0, 8, l2Offset + 8 * 16);
  await handle.close();
  const image = await openDiskImage(path);
  await assert.rejects(readAll(image), (error) => isCofferError(error, 'E_IMAGE_INVALID') && error.message.includes(path));
  await image.close();
  await truncate(path, (await stat(path)).size); // the file is still there for inspection
});
