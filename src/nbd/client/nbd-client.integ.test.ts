/**
 * Coffer's NBD client against a real server, qemu-nbd, serving qcow2 images read-only. The
 * oracles are QEMU's own tools: `qemu-img convert -O raw` for the bytes, `qemu-img map` for the
 * allocation map, and `nbdinfo --map=qemu:dirty-bitmap:NAME` for a dirty bitmap.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { coalesceExtents, type Extent } from '../../blockdev/index.js';
import { isCofferError } from '../../errors/index.js';
import { makeTempDir, requireTools, runTool, seededBytes, startDaemon, type Daemon } from '../../testing/index.js';
import { NbdBlockDevice, NbdClient } from '../index.js';

const MiB = 1024 * 1024;
const SIZE = 48 * MiB; // more than one 32 MiB request: whole-disk reads are split
let dir: { path: string; remove(): Promise<void> };
const daemons: Daemon[] = [];
let reference: Buffer;
let uri: string;
let bitmapUri: string;

before(async () => {
  await requireTools('qemu-img', 'qemu-io', 'qemu-nbd', 'nbdinfo');
  dir = await makeTempDir('coffer-nbd-client');
  const at = (name: string): string => path.join(dir.path, name);
  // Data of several sizes and alignments, holes between, zero clusters inside data.
  const raw = Buffer.alloc(SIZE);
  seededBytes(1, MiB).copy(raw, 0);
  seededBytes(2, 300 * 1024).copy(raw, 3 * MiB + 4096);
  seededBytes(3, 20 * MiB).copy(raw, 10 * MiB);
  seededBytes(4, 64 * 1024).copy(raw, SIZE - 64 * 1024);
  await writeFile(at('source.raw'), raw);
  await runTool('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', at('source.raw'), at('disk.qcow2')]);
  await runTool('qemu-io', ['-f', 'qcow2', '-c', 'write -z 12M 128k', '-c', 'write -z 20M 64k', '-c', 'write -P 0x5c 40M 4k', at('disk.qcow2')]);
  await runTool('qemu-img', ['convert', '-q', '-f', 'qcow2', '-O', 'raw', at('disk.qcow2'), at('reference.raw')]);
  reference = await readFile(at('reference.raw'));
  daemons.push(await startDaemon('qemu-nbd', ['-r', '-f', 'qcow2', '-t', '-e', '8', '-x', 'disk', '-D', 'the test disk', '-k', at('disk.sock'), at('disk.qcow2')], at('disk.sock')));
  uri = `nbd+unix:///disk?socket=${at('disk.sock')}`;

  // A persistent dirty bitmap: written before it exists (clean), then after (dirty).
  await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', at('bitmap.qcow2'), '8M']);
  await runTool('qemu-io', ['-f', 'qcow2', '-c', 'write -P 1 0 1M', at('bitmap.qcow2')]);
  await runTool('qemu-img', ['bitmap', '--add', at('bitmap.qcow2'), 'b0']);
  await runTool('qemu-io', ['-f', 'qcow2', '-c', 'write -P 2 2M 64k', '-c', 'write -P 3 5222400 10k', '-c', 'write -z 7M 4k', at('bitmap.qcow2')]);
  daemons.push(await startDaemon('qemu-nbd', ['-r', '-f', 'qcow2', '-B', 'b0', '-t', '-e', '8', '-x', 'vm', '-k', at('bitmap.sock'), at('bitmap.qcow2')], at('bitmap.sock')));
  bitmapUri = `nbd+unix:///vm?socket=${at('bitmap.sock')}`;
});

after(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
  await dir?.remove();
});

test('reads through qemu-nbd equal the image, whole and in unaligned pieces', async () => {
  const device = await NbdBlockDevice.open(uri);
  try {
    assert.equal(device.size, SIZE);
    assert.ok(device.client.info.structuredReplies);
    assert.ok(Buffer.from(await device.read(0, SIZE)).equals(reference), 'whole disk');
    const shared = new Uint8Array(new SharedArrayBuffer(3 * MiB));
    for (const [offset, length] of [[1, 1], [3 * MiB + 4095, 2 * MiB + 3], [12 * MiB - 7, 200_000], [SIZE - 5, 5], [SIZE, 0]] as const) {
      const got = await device.read(offset, length, shared);
      assert.ok(Buffer.from(got).equals(reference.subarray(offset, offset + length)), `${length} bytes at ${offset}`);
    }
  } finally {
    await device.close();
  }
});

test('many concurrent reads over one connection, more than may be in flight, all come back right', async () => {
  const device = await NbdBlockDevice.open(uri, { maxInFlight: 4 });
  try {
    const offsets = Array.from({ length: 64 }, (_, i) => (i * 777_777) % (SIZE - 70_000));
    const reads = await Promise.all(offsets.map((offset) => device.read(offset, 65_000 + (offset % 5000))));
    reads.forEach((bytes, i) => {
      const offset = offsets[i] as number;
      assert.ok(Buffer.from(bytes).equals(reference.subarray(offset, offset + bytes.length)), `read ${i}`);
    });
  } finally {
    await device.close();
  }
});

test('the base:allocation map equals qemu-img map', async () => {
  const map = JSON.parse(await runTool('qemu-img', ['map', '--output=json', '-f', 'qcow2', path.join(dir.path, 'disk.qcow2')])) as { start: number; length: number; zero: boolean }[];
  const expected = await collect(coalesceExtents(toAsync(map.map((m) => ({ offset: m.start, length: m.length, kind: m.zero ? 'zero' : 'data' } as Extent)))));
  const device = await NbdBlockDevice.open(uri);
  try {
    const got = await collect(device.extents());
    assert.deepEqual(got, expected);
    assert.ok(got.some((e) => e.kind === 'zero' && e.offset === 12 * MiB), 'the zero cluster written in data shows');
    // A sub-range is cut exactly at its ends.
    assert.deepEqual(await collect(device.extents(3 * MiB, 2 * MiB)), clip(expected, 3 * MiB, 2 * MiB));
  } finally {
    await device.close();
  }
});

test('simple replies: reads still equal the image, and without block status the map is one data extent', async () => {
  const device = await NbdBlockDevice.open(uri, { structuredReplies: false });
  try {
    assert.equal(device.client.info.structuredReplies, false);
    assert.ok(Buffer.from(await device.read(0, SIZE)).equals(reference));
    assert.deepEqual(await collect(device.extents()), [{ offset: 0, length: SIZE, kind: 'data' }]);
  } finally {
    await device.close();
  }
});

test('a qemu:dirty-bitmap context reads as changed extents, equal to nbdinfo --map of the bitmap', async () => {
  const oracle = JSON.parse(await runTool('nbdinfo', ['--map=qemu:dirty-bitmap:b0', '--json', bitmapUri])) as { offset: number; length: number; type: number }[];
  const device = await NbdBlockDevice.open(bitmapUri, { dirtyBitmap: 'b0' });
  try {
    const extents = await collect(device.extents());
    const changed = await collect(coalesceExtents(toAsync(extents.map((e) => ({ offset: e.offset, length: e.length, kind: 'data' as const, changed: e.changed })))));
    assert.deepEqual(changed, oracle.map((o) => ({ offset: o.offset, length: o.length, kind: 'data', changed: o.type === 1 })));
    // What was written after the bitmap was added, at its 64 KiB granularity, and nothing else.
    assert.deepEqual(changed.filter((e) => e.changed).map((e) => [e.offset, e.length]), [[2 * MiB, 65536], [5177344, 65536], [7 * MiB, 65536]]);
    // Allocation is still reported beside it: the zeroes written at 7 MiB are changed and zero.
    assert.ok(extents.some((e) => e.offset <= 7 * MiB && e.offset + e.length > 7 * MiB && e.kind === 'zero' && e.changed === true));
    assert.ok(extents.every((e) => typeof e.changed === 'boolean'));
  } finally {
    await device.close();
  }
});

test('a dirty bitmap the server does not export is an error that names it', async () => {
  await assert.rejects(NbdBlockDevice.open(uri, { dirtyBitmap: 'nope' }), (e: unknown) => isCofferError(e, 'E_NBD_ERROR') && /qemu:dirty-bitmap:nope/.test((e as Error).message));
});

test('the export list, an unknown export, and a server that is not there', async () => {
  assert.deepEqual(await NbdClient.listExports(uri), [{ name: 'disk', description: 'the test disk' }]);
  await assert.rejects(NbdClient.connect(uri, { exportName: 'missing' }), (e: unknown) => isCofferError(e, 'E_NBD_ERROR') && /no export "missing"/.test((e as Error).message));
  await assert.rejects(NbdClient.connect(`nbd+unix:///x?socket=${path.join(dir.path, 'none.sock')}`), (e: unknown) => isCofferError(e, 'E_CONNECTION_FAILED'));
});

test('a read-only export refuses writes before they are sent, and block status needs a context', async () => {
  const client = await NbdClient.connect(uri);
  try {
    assert.ok(client.readOnly);
    await assert.rejects(client.write(0, new Uint8Array(512)), (e: unknown) => isCofferError(e, 'E_NBD_ERROR'));
    await assert.rejects(client.blockStatus(0, 512), (e: unknown) => isCofferError(e, 'E_NBD_ERROR'));
    await assert.rejects(client.read(SIZE - 1, 2), RangeError);
    assert.ok(Buffer.from(await client.read(0, 4096)).equals(reference.subarray(0, 4096)), 'the connection is still fine');
  } finally {
    await client.close();
  }
});

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
}

async function* toAsync<T>(items: T[]): AsyncIterable<T> {
  yield* items;
}

function clip(extents: Extent[], offset: number, length: number): Extent[] {
  return extents
    .filter((e) => e.offset < offset + length && e.offset + e.length > offset)
    .map((e) => {
      const start = Math.max(e.offset, offset);
      return { ...e, offset: start, length: Math.min(e.offset + e.length, offset + length) - start };
    });
}
