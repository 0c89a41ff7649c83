import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { runBackendConformance } from './backend-conformance.js';
import { LocalBackend } from './local-backend.js';
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
