import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { tempFolders } from '../../testing/index.js';
import { initRepository, LocalBackend, openRepository } from '../index.js';
import { deriveLocalKeysAhead } from './index.js';

const tempFolder = tempFolders();
const kdf = { N: 1024, r: 8, p: 1 };

async function repository(): Promise<string> {
  const root = await tempFolder('coffer-keys-ahead');
  await initRepository(new LocalBackend(root), { passphrase: 'right', kdf, format: 2 });
  return root;
}

test('a key derived ahead opens the repository; one derived from another passphrase never does', async () => {
  const root = await repository();
  assert.equal(await deriveLocalKeysAhead(root, 'right'), 1);
  const repo = await openRepository(new LocalBackend(root), { passphrase: 'right', threads: 1 });
  await repo.close();

  // Derived ahead from a wrong passphrase: the right one still opens, the wrong one is refused.
  assert.equal(await deriveLocalKeysAhead(root, 'wrong'), 1);
  const again = await openRepository(new LocalBackend(root), { passphrase: 'right', threads: 1 });
  await again.close();
  assert.equal(await deriveLocalKeysAhead(root, 'right'), 1);
  await assert.rejects(openRepository(new LocalBackend(root), { passphrase: 'wrong', threads: 1 }), (error) => isCofferError(error, 'E_WRONG_PASSPHRASE'));
});

test('nothing is started for a folder without key files, a damaged key file, or more than 4 keys', async () => {
  assert.equal(await deriveLocalKeysAhead(await tempFolder('coffer-keys-none'), 'pw'), 0);
  const damaged = await tempFolder('coffer-keys-damaged');
  await mkdir(join(damaged, 'keys'));
  await writeFile(join(damaged, 'keys', '0123456789abcdef'), 'not json');
  assert.equal(await deriveLocalKeysAhead(damaged, 'pw'), 0);

  const root = await repository();
  const repo = await openRepository(new LocalBackend(root), { passphrase: 'right', threads: 1 });
  for (let i = 0; i < 4; i++) await repo.addKey(`other ${i}`, { kdf });
  await repo.close();
  assert.equal(await deriveLocalKeysAhead(root, 'right'), 0);
});
