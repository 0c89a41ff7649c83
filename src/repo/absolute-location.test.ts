import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { absoluteLocation, sameLocation } from './absolute-location.js';

test('a local directory becomes an absolute path; s3: and https:// locations stay as they are', () => {
  assert.equal(absoluteLocation('backups/main'), resolve('backups/main'));
  assert.equal(absoluteLocation('./main/'), resolve('main'));
  assert.equal(absoluteLocation('/srv/main'), '/srv/main');
  assert.equal(absoluteLocation('local:rel'), resolve('rel'));
  assert.equal(absoluteLocation('s3:https://rgw.example.com:7480/bucket/prefix'), 's3:https://rgw.example.com:7480/bucket/prefix');
  assert.equal(absoluteLocation('https://backup01:8443/vms'), 'https://backup01:8443/vms');
});

test('the same place: a relative path, a trailing slash, a symbolic link; not another directory or another kind', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-same-location-'));
  try {
    const main = join(dir, 'main');
    await symlink(main, join(dir, 'link'));
    assert.equal(await sameLocation(main, `${relative(process.cwd(), main)}/`), true);
    assert.equal(await sameLocation(`local:${main}`, main), true);
    assert.equal(await sameLocation(join(dir, 'link'), main), false, 'a link to a directory not made yet resolves to nothing');
    await mkdir(main);
    assert.equal(await sameLocation(join(dir, 'link'), main), true);
    assert.equal(await sameLocation(join(dir, 'other'), main), false);
    assert.equal(await sameLocation('s3:https://rgw:7480/b/p', 's3:https://rgw:7480/b/p'), true);
    assert.equal(await sameLocation('s3:https://rgw:7480/b/p', 's3:https://rgw:7480/b/q'), false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
