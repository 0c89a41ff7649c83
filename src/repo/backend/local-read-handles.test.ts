import assert from 'node:assert/strict';
import { readdir, readlink, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { tempFolders } from '../../testing/index.js';
import { initRepository, openRepository } from '../repository.js';
import { LocalBackend } from './local-backend.js';
import { ReadHandles } from './local-read-handles.js';

const tempFolder = tempFolders();

/** File descriptors of this process open on files under `root` (from /proc/self/fd). */
async function fdsUnder(root: string): Promise<number> {
  let count = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target.startsWith(`${root}/`)) count += 1;
  }
  return count;
}

async function packsIn(root: string, count: number, backend: LocalBackend): Promise<string[]> {
  const keys: string[] = [];
  for (let i = 0; i < count; i++) {
    const key = `packs/0${i}/p${i}`;
    await backend.put(key, Buffer.from(`pack ${i} `.repeat(100)));
    keys.push(key);
  }
  assert.equal(await fdsUnder(root), 0);
  return keys;
}

test('local read handles: kept open between ranged reads, at most maxOpen, the least recent closed first', async () => {
  const root = await tempFolder('coffer-handles');
  const handles = new ReadHandles(3, 60_000);
  const backend = new LocalBackend(root, { readHandles: handles });
  const keys = await packsIn(root, 6, backend);
  for (let round = 0; round < 3; round++) {
    for (const [i, key] of keys.entries()) assert.equal((await backend.getRange(key, 7, 6)).toString(), `pack ${i}`);
  }
  assert.equal(handles.openCount, 3);
  assert.equal(await fdsUnder(root), 3);
  // Reading the same file again opens nothing new.
  await backend.getRange(keys[5] as string, 0, 4);
  assert.equal(await fdsUnder(root), 3);
  await backend.close();
  assert.equal(handles.openCount, 0);
  assert.equal(await fdsUnder(root), 0);
});

test('local read handles: when every kept handle is busy a read uses one of its own, closed after it', async () => {
  const root = await tempFolder('coffer-handles');
  const handles = new ReadHandles(2, 60_000);
  const backend = new LocalBackend(root, { readHandles: handles });
  const [a, b, c] = (await packsIn(root, 3, backend)).map((key) => join(root, key));
  const leases = [await handles.acquire(a as string), await handles.acquire(b as string), await handles.acquire(c as string)];
  assert.equal(handles.openCount, 2);
  assert.equal(await fdsUnder(root), 3);
  for (const lease of leases) lease.release();
  await new Promise((resolve) => setTimeout(resolve, 20)); // the own handle's close
  assert.equal(await fdsUnder(root), 2);
  await handles.closeAll();
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(await fdsUnder(root), 0);
});

test('local read handles: idle handles are closed after idleMs', async () => {
  const root = await tempFolder('coffer-handles');
  const handles = new ReadHandles(16, 40);
  const backend = new LocalBackend(root, { readHandles: handles });
  const keys = await packsIn(root, 2, backend);
  for (const key of keys) await backend.getRange(key, 0, 4);
  assert.equal(await fdsUnder(root), 2);
  const deadline = Date.now() + 2000;
  while ((await fdsUnder(root)) > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(await fdsUnder(root), 0);
  assert.equal(handles.openCount, 0);
});

test('local read handles: a pack deleted behind a kept handle (another process) is E_MISSING_OBJECT, a replaced one is read anew', async () => {
  const root = await tempFolder('coffer-handles');
  const backend = new LocalBackend(root);
  const [deleted, replaced] = await packsIn(root, 2, backend);
  assert.equal((await backend.getRange(deleted as string, 0, 6)).toString(), 'pack 0');
  assert.equal((await backend.getRange(replaced as string, 0, 6)).toString(), 'pack 1');
  assert.equal(await fdsUnder(root), 2);
  // Not through the backend: its own delete and put forget the handle, another process's do not.
  await unlink(join(root, deleted as string));
  await assert.rejects(backend.getRange(deleted as string, 0, 6), (error) => isCofferError(error, 'E_MISSING_OBJECT'));
  await writeFile(join(root, 'packs', 'new'), 'other bytes');
  await rename(join(root, 'packs', 'new'), join(root, replaced as string));
  assert.equal((await backend.getRange(replaced as string, 0, 5)).toString(), 'other');
  // Deleted through the backend: forgotten at once, then missing.
  await backend.delete(replaced as string);
  await assert.rejects(backend.getRange(replaced as string, 0, 5), (error) => isCofferError(error, 'E_MISSING_OBJECT'));
  await backend.close();
  assert.equal(await fdsUnder(root), 0);
});

test('local read handles: a repository closes its backend handles when it closes (through its wrappers)', async () => {
  const root = await tempFolder('coffer-handles');
  const backend = new LocalBackend(root);
  await initRepository(backend, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, format: 2 });
  const repo = await openRepository(backend, { passphrase: 'pw' });
  assert.notEqual(repo.backend, backend); // the digest-recording wrapper
  await repo.backend.getRange?.('config', 0, 8);
  assert.equal(await fdsUnder(root), 1);
  await repo.close();
  assert.equal(await fdsUnder(root), 0);
});
