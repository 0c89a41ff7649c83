/**
 * VMware seSparse extents (ESXi snapshots), hand-built (src/testing/sesparse.ts: qemu-img
 * reads the format but cannot write it) and read by Coffer and by qemu-img, the oracle:
 * every grain kind, QEMU's grain-index bit swizzle, a delta over a parent with its CID, and
 * damaged or dirty extents refused with a coded error.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import type { Extent } from '../../blockdev/index.js';
import { isCofferError, type ErrorCode } from '../../errors/index.js';
import { allocatedEntry, buildSeSparse, seSparseDescriptor, tempFolders, type SeSparseGrain } from '../../testing/index.js';
import { openDiskImage } from '../open-image.js';

const run = promisify(execFile);
const tempFolder = tempFolders();
const MiB = 1024 * 1024;
const SIZE = 40 * MiB; // three grain tables, the last one partly used

async function qemuRaw(path: string, folder: string): Promise<Buffer> {
  const out = join(folder, 'qemu.raw');
  await run('qemu-img', ['convert', '-f', 'vmdk', '-O', 'raw', path, out]);
  return readFile(out);
}

async function qemuMap(path: string): Promise<string[]> {
  const { stdout } = await run('qemu-img', ['map', '-f', 'vmdk', '--output=json', path]);
  return (JSON.parse(stdout) as { start: number; length: number; data: boolean; present: boolean }[]).map((e) => `${e.start}+${e.length} ${e.data ? 'data' : e.present ? 'zero' : 'unallocated'}`);
}

function ourMap(extents: Extent[]): string[] {
  const merged: { offset: number; length: number; kind: string }[] = [];
  for (const e of extents) {
    const kind = e.kind === 'data' ? 'data' : e.layer === 0 ? 'zero' : 'unallocated';
    const last = merged.at(-1);
    if (last !== undefined && last.kind === kind && last.offset + last.length === e.offset) last.length += e.length;
    else merged.push({ offset: e.offset, length: e.length, kind });
  }
  return merged.map((e) => `${e.offset}+${e.length} ${e.kind}`);
}

const GRAINS = new Map<number, SeSparseGrain>([
  [0, { kind: 'data', fill: 0xa1 }],
  [1, { kind: 'zero' }],
  [3, { kind: 'data', fill: 0xb2 }],
  [4, { kind: 'unmapped' }],
  [5, { kind: 'data', fill: 0xc3, index: 4097 }], // low 12 bits of the index sit high in the entry
  [4096 + 7, { kind: 'data', fill: 0xd4 }], // the second grain table
  [8192 + 100, { kind: 'zero' }], // the third
  [8192 + 101, { kind: 'data', fill: 0xe5, index: 3 }],
]);

test('a seSparse disk reads as qemu-img reads it: data, zero, unmapped and unallocated grains, three grain tables', async () => {
  const folder = await tempFolder('coffer-sesparse');
  const guest = await buildSeSparse(join(folder, 'x-sesparse.vmdk'), { size: SIZE, grains: GRAINS });
  const descriptor = join(folder, 'x.vmdk');
  await writeFile(descriptor, seSparseDescriptor('x-sesparse.vmdk', SIZE));
  const expected = await qemuRaw(descriptor, folder);
  assert.ok(expected.equals(guest), 'the builder and qemu-img agree on the bytes');
  const image = await openDiskImage(descriptor);
  try {
    assert.equal(image.format, 'vmdk');
    assert.equal(image.size, SIZE);
    assert.ok(Buffer.from(await image.read(0, SIZE)).equals(expected));
    // Reads across grain and table boundaries.
    for (const [offset, length] of [[4095, 2], [16 * MiB - 3, 4100], [5 * 4096 + 17, 3 * 4096]] as const) {
      assert.ok(Buffer.from(await image.read(offset, length)).equals(expected.subarray(offset, offset + length)), `read ${offset}+${length}`);
    }
    const extents: Extent[] = [];
    for await (const e of image.extents()) extents.push(e);
    assert.deepEqual(ourMap(extents), await qemuMap(descriptor));
    assert.equal((image as unknown as { details: Record<string, unknown> }).details['seSparseExtents'], 1);
  } finally {
    await image.close();
  }
});

test('a seSparse delta over its parent: unallocated grains are the parent\'s, zero grains never are', async () => {
  const folder = await tempFolder('coffer-sesparse-delta');
  await run('qemu-img', ['create', '-q', '-f', 'vmdk', join(folder, 'base.vmdk'), String(SIZE)]);
  await run('qemu-io', ['-f', 'vmdk', '-c', `write -P 0x55 0 ${SIZE}`, join(folder, 'base.vmdk')]);
  const { stdout } = await run('qemu-img', ['info', '--output=json', join(folder, 'base.vmdk')]);
  const cid = (JSON.parse(stdout) as { 'format-specific': { data: { cid: number } } })['format-specific'].data.cid.toString(16).padStart(8, '0');
  await buildSeSparse(join(folder, 'delta-sesparse.vmdk'), { size: SIZE, grains: GRAINS });
  const delta = join(folder, 'delta.vmdk');
  await writeFile(delta, seSparseDescriptor('delta-sesparse.vmdk', SIZE, { file: 'base.vmdk', cid }));
  const expected = await qemuRaw(delta, folder);
  assert.equal(expected[2 * 4096], 0x55, 'an unallocated grain reads the parent');
  assert.equal(expected[4096], 0, 'a zero grain does not');
  const image = await openDiskImage(delta);
  try {
    assert.equal(image.backing?.format, 'vmdk');
    assert.ok(Buffer.from(await image.read(0, SIZE)).equals(expected));
  } finally {
    await image.close();
  }
  // A delta whose parentCID is not its parent's CID is refused, as qemu-img refuses to read it.
  await writeFile(delta, seSparseDescriptor('delta-sesparse.vmdk', SIZE, { file: 'base.vmdk', cid: '0badc0de' }));
  await assert.rejects(run('qemu-img', ['convert', '-f', 'vmdk', '-O', 'raw', delta, join(folder, 'no.raw')]));
  await assert.rejects(async () => {
    const refused = await openDiskImage(delta);
    await refused.read(0, SIZE).finally(() => refused.close());
  }, (e: unknown) => isCofferError(e, 'E_IMAGE_INVALID'));
});

test('damaged or dirty seSparse extents are refused with a coded error, never read as zeros', async () => {
  const folder = await tempFolder('coffer-sesparse-bad');
  const cases: { name: string; options: Partial<Parameters<typeof buildSeSparse>[1]>; code: ErrorCode; message: RegExp }[] = [
    { name: 'dirty', options: { dirtyJournal: true }, code: 'E_UNSUPPORTED_FORMAT', message: /journal must be replayed/ },
    { name: 'bad-kind', options: { rawEntries: new Map([[9, 0x4000_0000_0000_0000n]]) }, code: 'E_IMAGE_INVALID', message: /grain 9 has the invalid entry/ },
    { name: 'stray-bits', options: { rawEntries: new Map([[9, 1n]]) }, code: 'E_IMAGE_INVALID', message: /grain 9 has the invalid entry 0x1/ },
    { name: 'past-eof', options: { rawEntries: new Map([[9, allocatedEntry(1_000_000)]]) }, code: 'E_IMAGE_INVALID', message: /past the end of the file/ },
  ];
  for (const c of cases) {
    const extent = join(folder, `${c.name}-sesparse.vmdk`);
    await buildSeSparse(extent, { size: SIZE, grains: GRAINS, ...c.options });
    const descriptor = join(folder, `${c.name}.vmdk`);
    await writeFile(descriptor, seSparseDescriptor(`${c.name}-sesparse.vmdk`, SIZE));
    await assert.rejects(async () => {
      const image = await openDiskImage(descriptor);
      try {
        await image.read(0, SIZE);
        for await (const _ of image.extents()) {
          // the map must refuse too
        }
      } finally {
        await image.close();
      }
    }, (e: unknown) => isCofferError(e, c.code) && c.message.test((e as Error).message), c.name);
  }
  // The version and header checks QEMU makes.
  const extent = join(folder, 'v3-sesparse.vmdk');
  await buildSeSparse(extent, { size: SIZE, grains: GRAINS });
  const bytes = await readFile(extent);
  bytes.writeBigUInt64LE(0x0000_0003_0000_0001n, 8);
  await writeFile(extent, bytes);
  await writeFile(join(folder, 'v3.vmdk'), seSparseDescriptor('v3-sesparse.vmdk', SIZE));
  await assert.rejects(openDiskImage(join(folder, 'v3.vmdk')), (e: unknown) => isCofferError(e, 'E_UNSUPPORTED_FORMAT') && /seSparse version/.test((e as Error).message));
});
