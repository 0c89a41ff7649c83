import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isCofferError } from '../errors/index.js';
import { backendForLocation, cacheDirectoryOf, HttpBackend, initRepository, LocalBackend, openRepositoryAt, S3Backend, type Backend } from './index.js';

const dir = await mkdtemp(join(tmpdir(), 'coffer-open-location-'));
after(() => rm(dir, { recursive: true, force: true }));

test('each kind of location gets its backend', () => {
  const cases: [string, object, new (...args: never[]) => Backend][] = [
    ['/srv/backup/coffer', {}, LocalBackend],
    ['local:/srv/backup/coffer', {}, LocalBackend],
    ['s3:https://rgw.example.com/bucket/prefix', { env: { AWS_REGION: 'eu-west-3', AWS_MAX_ATTEMPTS: '2' } }, S3Backend],
    ['https://backup01:8443/vms', { env: { COFFER_REPO_TOKEN: 'secret', COFFER_REPO_FINGERPRINT: 'ab'.repeat(32) } }, HttpBackend],
  ];
  for (const [location, options, kind] of cases) assert.ok(backendForLocation(location, options) instanceof kind, location);
  assert.equal(backendForLocation('local:/srv/x').location, backendForLocation('/srv/x').location);
});

test('locations it cannot serve are usage errors that name what is missing', () => {
  const cases: [string, object, RegExp][] = [
    ['ftp://nowhere/x', {}, /ftp:\/\/nowhere\/x: not a local directory, an s3: location or an https:\/\/ repository server/],
    ['https://backup01:8443/vms', {}, /no token for/],
    ['https://backup01:8443/vms', { env: { COFFER_REPO_TOKEN: 't' }, repoServer: { fingerprint: 'ab'.repeat(32), cacert: '/etc/ca.pem' } }, /not both/],
    ['https://backup01:8443/vms', { repoServer: { tokenFile: join(dir, 'absent') } }, /cannot read the token file/],
  ];
  for (const [location, options, message] of cases) {
    assert.throws(() => backendForLocation(location, options), (e) => isCofferError(e, 'E_USAGE') && message.test(e.message), location);
  }
});

test('the cache directory: XDG_CACHE_HOME, else HOME, else none', () => {
  assert.equal(cacheDirectoryOf({ XDG_CACHE_HOME: '/c', HOME: '/h' }), '/c/coffer');
  assert.equal(cacheDirectoryOf({ HOME: '/h' }), '/h/.cache/coffer');
  assert.equal(cacheDirectoryOf({}), undefined);
});

test('openRepositoryAt opens through the wrapper, asking for the passphrase only then', async () => {
  const path = join(dir, 'repo');
  await initRepository(new LocalBackend(path), { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 } });
  const wrapped: string[] = [];
  const repo = await openRepositoryAt(path, { threads: 1, passphrase: async () => 'pw', wrapBackend: (backend) => (wrapped.push(backend.location), backend) });
  await repo.close();
  assert.equal(wrapped.length, 1);
  await assert.rejects(openRepositoryAt(path, { threads: 1, passphrase: 'wrong' }), (e) => isCofferError(e, 'E_WRONG_PASSPHRASE'));
});
