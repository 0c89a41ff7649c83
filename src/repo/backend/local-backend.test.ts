import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { runBackendConformance } from './backend-conformance.js';
import type { Backend } from './backend.js';
import { LocalBackend } from './local-backend.js';
import { readRange } from './read-range.js';
import { tempFolders } from '../../testing/index.js';

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
