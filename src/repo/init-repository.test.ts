/**
 * Which format initRepository writes: format 2 (packs) unless asked for format 1, the same as
 * `coffer init`; a format that does not exist is a usage error. Read back through
 * openRepository, so the stored config is what is checked. And that inits racing on one place
 * leave one repository, not one split between master keys.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isCofferError } from '../errors/index.js';
import { makeTempDir } from '../testing/index.js';
import { FORMAT_VERSIONS, initRepository, LocalBackend, openRepository, REPOSITORY_DEFAULTS, verifyStored, type FormatVersion } from './index.js';

let work: { path: string; remove(): Promise<void> };
let made = 0;
before(async () => {
  work = await makeTempDir('coffer-init-repository');
});
after(async () => {
  await work?.remove();
});

const cases: { asked: FormatVersion | undefined; written: FormatVersion }[] = [
  { asked: undefined, written: 2 },
  { asked: 2, written: 2 },
  { asked: 1, written: 1 },
];

for (const { asked, written } of cases) {
  test(`initRepository ${asked === undefined ? 'without a format' : `with format ${asked}`} writes format ${written}`, async () => {
    const backend = new LocalBackend(join(work.path, `repo${made++}`));
    const config = await initRepository(backend, { passphrase: null, ...(asked === undefined ? {} : { format: asked }) });
    assert.equal(config.version, written);
    const repo = await openRepository(backend);
    try {
      assert.equal(repo.config.version, written);
    } finally {
      await repo.close();
    }
  });
}

test('the default format is one initRepository can write, and a format that does not exist is E_USAGE naming those that do', async () => {
  assert.ok(FORMAT_VERSIONS.includes(REPOSITORY_DEFAULTS.format));
  const backend = new LocalBackend(join(work.path, `repo${made++}`));
  await assert.rejects(
    initRepository(backend, { passphrase: null, format: 3 as FormatVersion }),
    (e) => isCofferError(e, 'E_USAGE') && /format 3 does not exist: give 1 or 2/.test(e.message),
  );
});

test('concurrent initRepository on one empty place: exactly one wins; the others leave no key, record or digest key behind', async () => {
  const location = join(work.path, `repo${made++}`);
  const kdf = { N: 1024, r: 8, p: 1 };
  const passphrases = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot'];
  const fingerprints: string[] = [];
  const outcomes = await Promise.allSettled(
    passphrases.map((passphrase) => initRepository(new LocalBackend(location), { passphrase, kdf, onStoredDigestKey: (fingerprint) => fingerprints.push(fingerprint) })),
  );
  const won = outcomes.flatMap((outcome, i) => (outcome.status === 'fulfilled' ? [passphrases[i] as string] : []));
  assert.equal(won.length, 1, `exactly one init wins, not ${won.join(', ')}`);
  for (const outcome of outcomes) {
    if (outcome.status === 'rejected') assert.ok(isCofferError(outcome.reason, 'E_REPO_EXISTS'), String(outcome.reason));
  }
  const backend = new LocalBackend(location);
  const keys: string[] = [];
  for await (const entry of backend.list('keys/')) keys.push(entry.key);
  assert.equal(keys.length, 1, `one key file: ${keys.join(', ')}`);
  const repo = await openRepository(backend, { passphrase: won[0] as string });
  await repo.close();
  for (const passphrase of passphrases.filter((p) => p !== won[0])) {
    await assert.rejects(openRepository(new LocalBackend(location), { passphrase }), (error) => isCofferError(error, 'E_WRONG_PASSPHRASE'));
  }
  // Every stored object is covered by the winner's records, signed by the key the store names.
  const stored = await verifyStored(backend);
  assert.deepEqual(fingerprints, [stored.fingerprint]);
  assert.deepEqual(stored.damaged, []);
  assert.deepEqual(stored.notCovered, []);
  assert.equal(stored.records, 1);
});
