import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { DEFAULT_KDF, kdfForNewKeys, parseKeyFile, TESTONLY_WEAKEN_KDF, unwrapMasterKey, WEAKEST_KDF, wrapMasterKey } from './key-file.js';
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

test('new keys cost N = 2^16 unless COFFER_TESTONLY_WEAKEN_KDF=1 asks for the weakest a reader accepts, and that still opens only with its passphrase', async () => {
  assert.deepEqual(kdfForNewKeys({}), { N: 65536, r: 8, p: 1 });
  assert.deepEqual(kdfForNewKeys({ [TESTONLY_WEAKEN_KDF]: '0' }), DEFAULT_KDF);
  assert.deepEqual(kdfForNewKeys({ [TESTONLY_WEAKEN_KDF]: 'yes' }), DEFAULT_KDF, 'only 1 weakens');
  assert.deepEqual(kdfForNewKeys({ [TESTONLY_WEAKEN_KDF]: '1' }), { N: 1024, r: 8, p: 1 });
  const master = newMasterKey();
  const weak = parseKeyFile(Buffer.from(JSON.stringify(await wrapMasterKey(master, 'pw', { kdf: WEAKEST_KDF, now }))), 'keys/weak');
  assert.equal(weak.kdf.N, 1024, 'the lower bound parses');
  assert.deepEqual(await unwrapMasterKey(weak, 'pw'), master);
  assert.equal(await unwrapMasterKey(weak, 'pW'), null);
  const below = JSON.stringify({ ...weak, kdf: { ...weak.kdf, N: 512 } });
  assert.throws(() => parseKeyFile(Buffer.from(below), 'keys/x'), (e) => isCofferError(e, 'E_REPO_DAMAGED'), 'nothing weaker than WEAKEST_KDF is read');
});
