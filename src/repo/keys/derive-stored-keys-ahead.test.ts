import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { tempFolders } from '../../testing/index.js';
import { initRepository, LocalBackend, openRepository } from '../index.js';
import { deriveStoredKeysAhead, type KeyFileStore } from './index.js';

const tempFolder = tempFolders();
const kdf = { N: 1024, r: 8, p: 1 };

async function repository(): Promise<LocalBackend> {
  const backend = new LocalBackend(await tempFolder('coffer-stored-keys-ahead'));
  await initRepository(backend, { passphrase: 'right', kdf, format: 2 });
  return backend;
}

/** The store's reads, counted: what deriving ahead costs in round trips on S3. */
function counted(store: KeyFileStore): { store: KeyFileStore; reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    store: {
      list: (prefix) => {
        reads.push(`list ${prefix}`);
        return store.list(prefix);
      },
      get: (key) => {
        reads.push(`get ${key}`);
        return store.get(key);
      },
    },
  };
}

test('key files read through a store: one listing and one read each; the key derived ahead opens the repository, one from another passphrase never does', async () => {
  const backend = await repository();
  const { store, reads } = counted(backend);
  assert.equal(await deriveStoredKeysAhead(store, 'right'), 1);
  assert.deepEqual(reads.map((r) => r.replace(/[0-9a-f]{16}$/, 'ID')), ['list keys/', 'get keys/ID']);
  const repo = await openRepository(backend, { passphrase: 'right', threads: 1 });
  await repo.close();

  assert.equal(await deriveStoredKeysAhead(backend, 'wrong'), 1);
  await assert.rejects(openRepository(backend, { passphrase: 'wrong', threads: 1 }), (error) => isCofferError(error, 'E_WRONG_PASSPHRASE'));
  assert.equal(await deriveStoredKeysAhead(backend, 'wrong'), 1);
  await (await openRepository(backend, { passphrase: 'right', threads: 1 })).close();
});

test('nothing is started for no key files, a damaged one, a failing store, or more than 4 keys', async () => {
  const empty = new LocalBackend(await tempFolder('coffer-stored-keys-none'));
  assert.equal(await deriveStoredKeysAhead(empty, 'pw'), 0);
  const damaged = new LocalBackend(await tempFolder('coffer-stored-keys-damaged'));
  await damaged.put('keys/0123456789abcdef', Buffer.from('not json'));
  assert.equal(await deriveStoredKeysAhead(damaged, 'pw'), 0);
  const failing: KeyFileStore = {
    async *list() {
      throw new Error('the store is down');
    },
    get: () => Promise.reject(new Error('the store is down')),
  };
  assert.equal(await deriveStoredKeysAhead(failing, 'pw'), 0);

  const backend = await repository();
  const repo = await openRepository(backend, { passphrase: 'right', threads: 1 });
  for (let i = 0; i < 4; i++) await repo.addKey(`other ${i}`, { kdf });
  await repo.close();
  const { store, reads } = counted(backend);
  assert.equal(await deriveStoredKeysAhead(store, 'right'), 0);
  assert.deepEqual(reads, ['list keys/'], 'no key file read when there are too many');
});
