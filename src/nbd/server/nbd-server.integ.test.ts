/**
 * Coffer's NBD server against real clients: nbdinfo (size, map, export list), nbdcopy (whole
 * export copied; and copying into a writable export), qemu-img compare, qemu-io writes, and
 * QEMU's own NBD client over TCP. The served devices are Coffer's RawImage (a sparse file,
 * so zero extents exist) and RawFileDevice (writable).
 */
import assert from 'node:assert/strict';
import { copyFile, open, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Extent } from '../../blockdev/index.js';
import { RawImage } from '../../disk/index.js';
import { makeTempDir, requireTools, runTool, seededBytes } from '../../testing/index.js';
import { NbdServer, RawFileDevice } from '../index.js';

const MiB = 1024 * 1024;
const SIZE = 40 * MiB + 3 * 512;
let dir: { path: string; remove(): Promise<void> };
let disk: RawImage;
let scratch: RawFileDevice;
let server: NbdServer;
let tcp: NbdServer;
let reference: Buffer;
const clientErrors: unknown[] = [];
const at = (name: string): string => path.join(dir.path, name);
const uriOf = (name: string): string => `nbd+unix:///${name}?socket=${at('coffer.sock')}`;

before(async () => {
  await requireTools('nbdinfo', 'nbdcopy', 'qemu-img', 'qemu-io');
  dir = await makeTempDir('coffer-nbd-server');
  // A sparse file: data at several places, holes between (RawImage maps holes as zero).
  await runTool('truncate', ['-s', String(SIZE), at('disk.raw')]);
  const pieces: [number, Buffer][] = [[0, seededBytes(11, 2 * MiB)], [5 * MiB + 512, seededBytes(12, 100_000)], [16 * MiB, seededBytes(13, 9 * MiB)], [SIZE - 4096, seededBytes(14, 4096)]];
  const handle = await open(at('disk.raw'), 'r+');
  for (const [offset, bytes] of pieces) await handle.write(bytes, 0, bytes.length, offset);
  await handle.close();
  reference = await readFile(at('disk.raw'));
  await writeFile(at('scratch.raw'), Buffer.alloc(8 * MiB));
  disk = await RawImage.open(at('disk.raw'));
  scratch = await RawFileDevice.open(at('scratch.raw'));
  const exports = { disk: { device: disk, description: 'a sparse disk' }, scratch: { device: scratch, writable: true as const } };
  server = await NbdServer.listen({ socket: at('coffer.sock') }, { exports, onClientError: (e) => clientErrors.push(e) });
  tcp = await NbdServer.listen({ host: '127.0.0.1', port: 0 }, { exports, onClientError: (e) => clientErrors.push(e) });
});

after(async () => {
  await server?.close();
  await tcp?.close();
  await disk?.close();
  await scratch?.close();
  await dir?.remove();
});

test('nbdinfo sees the size, the flags and the export list', async () => {
  const info = JSON.parse(await runTool('nbdinfo', ['--json', uriOf('disk')])) as { protocol: string; exports: Record<string, unknown>[] };
  assert.equal(info.protocol, 'newstyle-fixed');
  const exp = info.exports[0] as Record<string, unknown>;
  assert.equal(exp['export-size'], SIZE);
  assert.equal(exp['is_read_only'], true);
  assert.equal(exp['description'], 'a sparse disk');
  assert.deepEqual(exp['contexts'], ['base:allocation']);
  const list = JSON.parse(await runTool('nbdinfo', ['--list', '--json', `nbd+unix://?socket=${at('coffer.sock')}`])) as { exports: { 'export-name': string; is_read_only: boolean }[] };
  assert.deepEqual(list.exports.map((e) => [e['export-name'], e.is_read_only]), [['disk', true], ['scratch', false]]);
});

test('nbdinfo --map equals the device extents: holes as hole,zero, data as data', async () => {
  const map = JSON.parse(await runTool('nbdinfo', ['--map', '--json', uriOf('disk')])) as { offset: number; length: number; type: number }[];
  const extents: Extent[] = [];
  for await (const e of disk.extents()) extents.push(e);
  assert.ok(extents.some((e) => e.kind === 'zero') && extents.some((e) => e.kind === 'data'));
  assert.deepEqual(map.map((m) => [m.offset, m.length, m.type]), extents.map((e) => [e.offset, e.length, e.kind === 'zero' ? 3 : 0]));
});

test('nbdcopy copies the whole export, and qemu-img compare finds it equal, both at once', async () => {
  const [copied] = await Promise.all([
    runTool('nbdcopy', [uriOf('disk'), at('copy.raw')]).then(() => readFile(at('copy.raw'))),
    runTool('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', uriOf('disk'), at('disk.raw')]),
    runTool('qemu-img', ['compare', '-F', 'raw', `nbd://127.0.0.1:${(tcp.address as { port: number }).port}/disk`, at('disk.raw')]),
  ]);
  assert.ok(copied.equals(reference));
  // An image that differs by one byte is found different: the comparison above is not vacuous.
  await copyFile(at('disk.raw'), at('other.raw'));
  await runTool('qemu-io', ['-f', 'raw', '-c', 'write -P 0x01 30M 1', at('other.raw')]);
  await assert.rejects(runTool('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', uriOf('disk'), at('other.raw')]), /mismatch at offset 31457280/);
});

test('a writable export takes writes from qemu-io and nbdcopy, and they read back', async () => {
  const scratchUri = uriOf('scratch');
  await runTool('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 100k 64k', '-c', 'write -z 1M 4k', '-c', 'write -P 0x33 7M 1M', '-c', 'flush', scratchUri]);
  await runTool('qemu-io', ['-f', 'raw', '-c', 'read -P 0x5a 100k 64k', '-c', 'read -P 0x33 7M 1M', scratchUri]);
  const file = await readFile(at('scratch.raw'));
  assert.ok(file.subarray(100 * 1024, 164 * 1024).every((b) => b === 0x5a));
  assert.ok(file.subarray(7 * MiB, 8 * MiB).every((b) => b === 0x33));
  // nbdcopy writes a whole image in (with write-zeroes for its zero ranges), then reads it out.
  const source = Buffer.alloc(8 * MiB);
  seededBytes(21, 3 * MiB).copy(source, MiB);
  await writeFile(at('source.raw'), source);
  await runTool('nbdcopy', [at('source.raw'), scratchUri]);
  assert.ok((await readFile(at('scratch.raw'))).equals(source));
  await runTool('nbdcopy', [scratchUri, at('back.raw')]);
  assert.ok((await readFile(at('back.raw'))).equals(source));
  // The read-only export refuses writes.
  await assert.rejects(runTool('qemu-io', ['-f', 'raw', '-c', 'write -P 1 0 512', uriOf('disk')]), /read-only|Operation not permitted|denied/i);
});

test('well-behaved clients left no error behind', () => {
  assert.deepEqual(clientErrors, []);
});
