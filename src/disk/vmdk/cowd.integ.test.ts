/**
 * ESX sparse ("COWD") extents, the snapshot deltas of ESX on VMFS 3/5, hand-built
 * (src/testing/cowd.ts: qemu-img reads the format but cannot write it) and read by Coffer and
 * by qemu-img, the oracle: grains of one sector (ESX's) and of eight across grain tables, a
 * delta over a flat parent through its descriptor's parentFileNameHint, a COWD file given
 * without its descriptor, and damaged extents refused with a coded error.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import type { Extent } from '../../blockdev/index.js';
import { isCofferError } from '../../errors/index.js';
import { buildCowd, cowdDescriptor, seededBytes, tempFolders } from '../../testing/index.js';
import { openDiskImage } from '../open-image.js';

const run = promisify(execFile);
const tempFolder = tempFolders();
const SECTORS = 20_000; // 9.8 MiB: three grain tables of one-sector grains (2 MiB each), the last one partly used

async function qemuRaw(path: string, folder: string): Promise<Buffer> {
  const out = join(folder, 'qemu.raw');
  await run('qemu-img', ['convert', '-f', 'vmdk', '-O', 'raw', path, out]);
  return readFile(out);
}

async function qemuDataRanges(path: string): Promise<string[]> {
  const { stdout } = await run('qemu-img', ['map', '-f', 'vmdk', '--output=json', path]);
  return merge((JSON.parse(stdout) as { start: number; length: number; data: boolean }[]).filter((e) => e.data).map((e) => [e.start, e.length]));
}

function merge(ranges: [number, number][]): string[] {
  const out: [number, number][] = [];
  for (const [start, length] of ranges) {
    const last = out.at(-1);
    if (last !== undefined && last[0] + last[1] === start) last[1] += length;
    else out.push([start, length]);
  }
  return out.map(([start, length]) => `${start}+${length}`);
}

async function ourDataRanges(path: string, layer?: number): Promise<string[]> {
  const image = await openDiskImage(path);
  try {
    const extents: Extent[] = [];
    for await (const e of image.extents()) extents.push(e);
    return merge(extents.filter((e) => e.kind === 'data' && (layer === undefined || e.layer === layer)).map((e) => [e.offset, e.length]));
  } finally {
    await image.close();
  }
}

for (const [grainSectors, sectors] of [[1, SECTORS], [8, 40_000]] as const) {
  test(`a vmfsSparse disk of ${grainSectors}-sector grains reads as qemu-img reads it, and maps as it maps`, async () => {
    const folder = await tempFolder('coffer-cowd');
    const grainsPerTable = 4096;
    const grains = new Map<number, number>([[0, 0xa1], [5, 0xa2], [6, 0xa3], [grainsPerTable - 1, 0xa4], [grainsPerTable, 0xa5], [Math.floor(sectors / grainSectors) - 1, 0xa6]]);
    if (grainSectors === 1) grains.set(2 * grainsPerTable + 17, 0xa7); // the third table
    const built = await buildCowd(join(folder, 'x-delta.vmdk'), { sectors, grainSectors, grains });
    const descriptor = join(folder, 'x.vmdk');
    await writeFile(descriptor, cowdDescriptor('x-delta.vmdk', sectors));
    const expected = await qemuRaw(descriptor, folder);
    assert.ok(expected.equals(built), 'the builder and qemu-img agree on the bytes');
    const image = await openDiskImage(descriptor);
    try {
      assert.equal(image.format, 'vmdk');
      assert.equal(image.size, sectors * 512);
      assert.ok(Buffer.from(await image.read(0, image.size)).equals(expected));
      for (const [offset, length] of [[511, 2], [5 * 512 * grainSectors - 3, 2000], [grainsPerTable * 512 * grainSectors - 700, 1400]] as const) {
        assert.ok(Buffer.from(await image.read(offset, length)).equals(expected.subarray(offset, offset + length)), `read ${offset}+${length}`);
      }
      assert.equal((image as unknown as { details: Record<string, unknown> }).details['cowdExtents'], 1);
    } finally {
      await image.close();
    }
    assert.deepEqual(await ourDataRanges(descriptor), await qemuDataRanges(descriptor));
  });
}

test('an ESX snapshot: a COWD delta over a flat parent named by parentFileNameHint, CID-checked; its grains are layer 0', async () => {
  const folder = await tempFolder('coffer-cowd-chain');
  const size = SECTORS * 512;
  await writeFile(join(folder, 'base.raw'), seededBytes(41, size));
  await run('qemu-img', ['convert', '-f', 'raw', '-O', 'vmdk', '-o', 'subformat=monolithicFlat', join(folder, 'base.raw'), join(folder, 'base.vmdk')]);
  const { stdout } = await run('qemu-img', ['info', '--output=json', join(folder, 'base.vmdk')]);
  const cid = (JSON.parse(stdout) as { 'format-specific': { data: { cid: number } } })['format-specific'].data.cid.toString(16).padStart(8, '0');
  await buildCowd(join(folder, 'base-000001-delta.vmdk'), { sectors: SECTORS, grainSectors: 1, grains: new Map([[3, 0x31], [4, 0x32], [9000, 0x33]]) });
  const delta = join(folder, 'base-000001.vmdk');
  await writeFile(delta, cowdDescriptor('base-000001-delta.vmdk', SECTORS, { file: 'base.vmdk', cid }));
  const expected = await qemuRaw(delta, folder);
  assert.equal(expected[3 * 512], 0x31);
  assert.ok(expected.subarray(0, 512).equals(seededBytes(41, size).subarray(0, 512)), 'an unallocated grain reads the parent');
  const image = await openDiskImage(delta);
  try {
    assert.equal(image.backing?.format, 'vmdk');
    assert.ok(Buffer.from(await image.read(0, size)).equals(expected));
  } finally {
    await image.close();
  }
  assert.deepEqual(await ourDataRanges(delta, 0), ['1536+1024', `${9000 * 512}+512`], 'the delta holds its three grains');
  // A delta whose parentCID is not its parent's CID is refused (the parent changed after the snapshot).
  await writeFile(delta, cowdDescriptor('base-000001-delta.vmdk', SECTORS, { file: 'base.vmdk', cid: '0badc0de' }));
  await assert.rejects(async () => (await openDiskImage(delta)).close(), (e: unknown) => isCofferError(e, 'E_IMAGE_INVALID'));
});

test('a COWD file given alone is refused (its descriptor names its parent), never read as raw', async () => {
  const folder = await tempFolder('coffer-cowd-alone');
  const path = join(folder, 'alone-delta.vmdk');
  await buildCowd(path, { sectors: 2048, grainSectors: 1, grains: new Map([[0, 1]]) });
  await assert.rejects(openDiskImage(path), (e: unknown) => isCofferError(e, 'E_UNSUPPORTED_FORMAT') && /COWD.*give the descriptor file/.test((e as Error).message) && (e as Error).message.includes(path));
});

test('damaged COWD extents are refused with E_IMAGE_INVALID naming the file, never read as zeros', async () => {
  const folder = await tempFolder('coffer-cowd-bad');
  const cases: { name: string; mutate: (b: Buffer) => Buffer; message: RegExp }[] = [
    { name: 'grain-size-0', mutate: (b) => (b.writeUInt32LE(0, 16), b), message: /grain size of 0 sectors/ },
    { name: 'directory-short', mutate: (b) => (b.writeUInt32LE(1, 24), b), message: /covers less than/ },
    { name: 'directory-past-end', mutate: (b) => (b.writeUInt32LE(0x7fff_ffff, 20), b), message: /grain directory at sector/ },
    { name: 'table-past-end', mutate: (b) => (b.writeUInt32LE(0x00ff_ffff, 4 * 512), b), message: /grain table at byte .* past the end/ },
    { name: 'grain-past-end', mutate: (b) => (b.writeUInt32LE(0x00ff_ffff, b.readUInt32LE(4 * 512) * 512), b), message: /COWD grain 0 lies at .* past the end/ },
    { name: 'truncated', mutate: (b) => b.subarray(0, b.length - 512), message: /past the end/ },
  ];
  for (const c of cases) {
    const extent = join(folder, `${c.name}-delta.vmdk`);
    await buildCowd(extent, { sectors: SECTORS, grainSectors: 1, grains: new Map([[0, 0x11], [SECTORS - 1, 0x12]]) });
    await writeFile(extent, c.mutate(await readFile(extent)));
    const descriptor = join(folder, `${c.name}.vmdk`);
    await writeFile(descriptor, cowdDescriptor(`${c.name}-delta.vmdk`, SECTORS));
    await assert.rejects(async () => {
      const image = await openDiskImage(descriptor);
      try {
        await image.read(0, image.size);
        for await (const _ of image.extents()) {
          // the map must refuse too
        }
      } finally {
        await image.close();
      }
    }, (e: unknown) => isCofferError(e, 'E_IMAGE_INVALID') && c.message.test((e as Error).message) && (e as Error).message.includes(extent), c.name);
  }
});
