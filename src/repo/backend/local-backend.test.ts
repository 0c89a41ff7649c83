import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { runBackendConformance } from './backend-conformance.js';
import type { Backend } from './backend.js';
import { LocalBackend } from './local-backend.js';
import { readRange } from './read-range.js';
import { alignedSharedBuffer, takesDirectWrites } from '../../native/index.js';
import { makeDiskTempDir, runTool, seededBytes, tempFolders } from '../../testing/index.js';

const tempFolder = tempFolders();

runBackendConformance('local', async () => new LocalBackend(await tempFolder('coffer-local')));

test('local: temporary files of a killed writer are never listed', async () => {
  const root = await tempFolder('coffer-local');
  const backend = new LocalBackend(root);
  await backend.put('chunks/00/real', Buffer.from('x'));
  await writeFile(join(root, 'chunks', '00', '.tmp-deadbeef'), 'partial');
  const keys = [];
  for await (const entry of backend.list('chunks/')) keys.push(entry.key);
  assert.deepEqual(keys, ['chunks/00/real']);
});

test('local: a put leaves no temporary file behind', async () => {
  const root = await tempFolder('coffer-local');
  const backend = new LocalBackend(root);
  await backend.put('snapshots/a', Buffer.from('x'));
  assert.deepEqual(await readdir(join(root, 'snapshots')), ['a']);
});

test('local: an empty file (what a power loss leaves of an unsynced put) counts as absent', async () => {
  const root = await tempFolder('coffer-local');
  const backend = new LocalBackend(root);
  await backend.put('chunks/00/whole', Buffer.from('x'));
  await writeFile(join(root, 'chunks', '00', 'empty'), '');
  assert.equal(await backend.has('chunks/00/empty'), false);
  await assert.rejects(backend.get('chunks/00/empty'), (e) => isCofferError(e, 'E_MISSING_OBJECT'));
  const keys = [];
  for await (const entry of backend.list('chunks/')) keys.push(entry.key);
  assert.deepEqual(keys, ['chunks/00/whole']);
  await backend.put('chunks/00/empty', Buffer.from('y')); // the next backup writes it again
  assert.equal((await backend.get('chunks/00/empty')).toString(), 'y');
  await backend.sync();
});

test('readRange into a buffer, through a backend without ranged reads: the whole object is cut and copied into it', async () => {
  const local = new LocalBackend(await tempFolder('coffer-local'));
  const data = Buffer.from('0123456789abcdef');
  await local.put('packs/00/p', data);
  const getOnly = { location: local.location, get: (key: string) => local.get(key) } as unknown as Backend;
  const into = new Uint8Array(new SharedArrayBuffer(8));
  const view = await readRange(getOnly, 'packs/00/p', 4, 6, into);
  assert.equal(view.buffer, into.buffer);
  assert.equal(view.toString(), '456789');
  await assert.rejects(readRange(getOnly, 'packs/00/p', 12, 6, into), (e) => isCofferError(e, 'E_CORRUPT_OBJECT'));
});

test('local: a pack-sized object in aligned memory is written past the page cache, exactly its length; one in unaligned memory through it', async (t) => {
  const dir = await makeDiskTempDir('local-direct-put');
  try {
    if (!(await takesDirectWrites(dir.path))) return t.skip(`${dir.path} is not on ext4, XFS or btrfs`);
    const backend = new LocalBackend(dir.path);
    const cachedBytes = async (key: string) => Number((await runTool('fincore', ['--bytes', '--noheadings', '--output', 'RES', join(dir.path, key)])).trim());
    // As a pack writer's buffers are: aligned shared memory, a length that is not whole sectors.
    const length = 3 * 1024 * 1024 + 123;
    const pack = alignedSharedBuffer(length);
    seededBytes(7, length).copy(pack);
    await backend.put('packs/ab/direct', pack);
    assert.ok((await cachedBytes('packs/ab/direct')) <= 4096, 'no page of it is left in the page cache');
    assert.ok((await readFile(join(dir.path, 'packs/ab/direct'))).equals(pack), 'byte for byte, cut to its length');
    const again = alignedSharedBuffer(length);
    seededBytes(8, length).copy(again);
    await backend.put('packs/ab/direct2', again);
    assert.ok((await readRange(backend, 'packs/ab/direct2', 1000, length - 1000)).equals(again.subarray(1000)));

    const unaligned = Buffer.concat([Buffer.alloc(1), seededBytes(9, length)]).subarray(1);
    await backend.put('packs/ab/buffered', unaligned);
    assert.ok((await backend.get('packs/ab/buffered')).equals(unaligned));
    assert.ok((await cachedBytes('packs/ab/buffered')) > length / 2, 'unaligned memory goes through the page cache');
    assert.deepEqual((await readdir(join(dir.path, 'packs/ab'))).sort(), ['buffered', 'direct', 'direct2'], 'no temporary file left');
  } finally {
    await dir.remove();
  }
});
