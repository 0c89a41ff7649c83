import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { parseKeyFile, unwrapMasterKey, wrapMasterKey } from './key-file.js';
import { newMasterKey } from './master-key.js';

const kdf = { N: 1024, r: 8, p: 1 };
const now = new Date('2026-11-25T00:00:00Z');

test('the right passphrase unwraps the master key, a wrong one gives null', async () => {
  const master = newMasterKey();
  const file = await wrapMasterKey(master, 'correct horse', { kdf, now });
  const reparsed = parseKeyFile(Buffer.from(JSON.stringify(file)), 'keys/x');
  assert.deepEqual(await unwrapMasterKey(reparsed, 'correct horse'), master);
  assert.equal(await unwrapMasterKey(reparsed, 'correct hors'), null);
  assert.equal(reparsed.created, now.toISOString());
});

test('passphrases are compared after Unicode normalization', async () => {
  const master = newMasterKey();
  const file = await wrapMasterKey(master, 'caf\u00e9', { kdf, now });
  assert.deepEqual(await unwrapMasterKey(file, 'cafe\u0301'), master);
});

test('damaged key files are reported as such', async () => {
  const good = await wrapMasterKey(newMasterKey(), 'pw', { kdf, now });
  const damaged = [
    'not json',
    '{}',
    JSON.stringify({ ...good, version: 2 }),
    JSON.stringify({ ...good, kdf: { ...good.kdf, N: 3 } }),
    JSON.stringify({ ...good, kdf: { ...good.kdf, N: 2 ** 30 } }),
    JSON.stringify({ ...good, wrap: { ...good.wrap, data: 'AAAA' } }),
  ];
  for (const text of damaged) {
    assert.throws(() => parseKeyFile(Buffer.from(text), 'keys/x'), (e) => isCofferError(e, 'E_REPO_DAMAGED'), text.slice(0, 40));
  }
});
