/**
 * deriveKeysAheadAt against a real Ceph RADOS Gateway: an `s3:` location's key files are
 * listed and read with the environment's credentials and their derivation started (the
 * repository then opens with it); a local folder too; a repository server's location, an
 * unreachable bucket and a location of no known kind start nothing and never throw.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startCephS3, tempFolders, type CephS3 } from '../testing/index.js';
import { deriveKeysAheadAt } from './derive-keys-ahead.js';
import { backendForLocation, initRepository, openRepositoryAt } from './index.js';

const kdf = { N: 1024, r: 8, p: 1 };
const tempFolder = tempFolders();
let s3: CephS3;
let saved: NodeJS.ProcessEnv;

before(async () => {
  s3 = await startCephS3();
  // The S3 backend takes its keys from the process's environment, as the CLI's does.
  saved = { ...process.env };
  Object.assign(process.env, s3.env);
});
after(async () => {
  for (const name of Object.keys(s3?.env ?? {})) {
    if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }
  await s3?.stop();
});

test('an s3: location and a local folder: one derivation per key file, and the repository opens with it', async () => {
  const bucket = await s3.createBucket('keys-ahead');
  const locations = [`s3:${s3.endpoint}/${bucket}/repo`, await tempFolder('coffer-keys-ahead-at')];
  for (const location of locations) {
    await initRepository(backendForLocation(location, { env: process.env }), { passphrase: 'right', kdf, format: 2 });
    assert.equal(await deriveKeysAheadAt(location, 'right', process.env), 1, location);
    const env = { ...process.env, XDG_CACHE_HOME: await tempFolder('coffer-keys-ahead-cache') };
    const repo = await openRepositoryAt(location, { env, passphrase: 'right', threads: 1 });
    await repo.close();
  }
});

test('a repository server, a bucket that is not there, an unknown scheme: nothing started, nothing thrown', async () => {
  assert.equal(await deriveKeysAheadAt('https://127.0.0.1:1/repo', 'pw', process.env), 0);
  assert.equal(await deriveKeysAheadAt(`s3:${s3.endpoint}/no-such-bucket/repo`, 'pw', process.env), 0);
  assert.equal(await deriveKeysAheadAt('ftp://example/repo', 'pw', process.env), 0);
});
