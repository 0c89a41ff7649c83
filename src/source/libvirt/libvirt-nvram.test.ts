import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { makeTempDir } from '../../testing/index.js';
import { bufferDevice } from '../../blockdev/index.js';
import { readVariableStore } from './libvirt-nvram.js';

let temp: { path: string; remove(): Promise<void> };
let work: string;
before(async () => {
  temp = await makeTempDir('coffer-nvram');
  work = temp.path;
});
after(() => temp?.remove());

test('a variable store is read whole; its device reads back the same bytes as one data extent', async () => {
  const bytes = Buffer.alloc(540_672, 0xff);
  bytes.write('_FVH', 40);
  const file = path.join(work, 'web01_VARS.fd');
  await fs.writeFile(file, bytes);
  const read = await readVariableStore(file);
  assert.ok('bytes' in read && read.bytes.equals(bytes));
  const device = bufferDevice(read.bytes);
  assert.equal(device.size, bytes.length);
  assert.ok(Buffer.from(await device.read(0, device.size)).equals(bytes));
  const into = new Uint8Array(64);
  assert.deepEqual([...(await device.read(40, 4, into))], [...Buffer.from('_FVH')]);
  const extents = [];
  for await (const e of device.extents()) extents.push(e);
  assert.deepEqual(extents, [{ offset: 0, length: bytes.length, kind: 'data' }]);
  await assert.rejects(device.read(bytes.length - 1, 2), RangeError);
});

test('a store that cannot be read, is not a regular file, is empty or is too large: the reason, never an error or a hang', async () => {
  const big = path.join(work, 'big.fd');
  await fs.writeFile(big, Buffer.alloc(4097));
  const empty = path.join(work, 'empty.fd');
  await fs.writeFile(empty, '');
  const fifo = path.join(work, 'fifo.fd');
  await promisify(execFile)('mkfifo', [fifo]);
  const cases: [string, RegExp][] = [
    [path.join(work, 'missing.fd'), /missing\.fd cannot be opened \(ENOENT\): the backup has no copy of it$/],
    [work, /is not a regular file/],
    [fifo, /fifo\.fd is not a regular file/],
    [empty, /is empty/],
    [big, /big\.fd is 4097 bytes, more than the 4096 a variable store may be/],
  ];
  for (const [file, reason] of cases) {
    const read = await readVariableStore(file, 4096);
    assert.ok('skip' in read, file);
    assert.match(read.skip, reason);
  }
  const fits = await readVariableStore(big, 4097);
  assert.ok('bytes' in fits && fits.bytes.length === 4097);
});
