/**
 * Which format initRepository writes: format 2 (packs) unless asked for format 1, the same as
 * `coffer init`; a format that does not exist is a usage error. Read back through
 * openRepository, so the stored config is what is checked.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isCofferError } from '../errors/index.js';
import { makeTempDir } from '../testing/index.js';
import { FORMAT_VERSIONS, initRepository, LocalBackend, openRepository, REPOSITORY_DEFAULTS, type FormatVersion } from './index.js';

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
