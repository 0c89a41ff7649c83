/**
 * `coffer backup` keeps each disk's block fingerprints in the host's cache directory
 * ($XDG_CACHE_HOME/coffer/block-fingerprints, src/backup/block-fingerprints.ts) and leaves
 * them alone with `--no-cache`.
 */
import assert from 'node:assert/strict';
import { open, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { seededBytes } from '../testing/index.js';
import { cofferJson, makeWorkDir, removeDir, type BackupJson } from './cli-harness.js';

let work: string;
before(async () => {
  work = await makeWorkDir('fingerprints');
});
after(() => removeDir(work));

test('backup writes the disk\'s fingerprints for the next one; --no-cache neither reads nor writes them', async () => {
  const repo = join(work, 'repo');
  const image = join(work, 'disk.raw');
  await writeFile(image, seededBytes(51, 4 * 1024 * 1024));
  const env = { env: { XDG_CACHE_HOME: join(work, 'cache') } };
  await cofferJson(['init', '-r', repo, '--insecure-no-encryption'], env);
  const first = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'vm1', image], env);
  const folder = join(work, 'cache', 'coffer', 'block-fingerprints');
  const [repository] = await readdir(folder);
  const file = join(folder, repository!, (await readdir(join(folder, repository!)))[0]!);
  const describes = async () => (await readFile(file)).subarray(32, 64).toString('hex');
  assert.equal(await describes(), first.id);

  const handle = await open(image, 'r+');
  await handle.write(Buffer.from('changed'), 0, 7, 1024 * 1024);
  await handle.close();
  const uncached = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'vm1', '--no-cache', image], env);
  assert.equal(uncached.parent, first.id);
  assert.ok(uncached.bytesNew > 0);
  assert.equal(await describes(), first.id, '--no-cache left the cache as it was');
  assert.deepEqual(await readdir(join(folder, repository!)), [file.split('/').at(-1)], 'and wrote nothing beside it');

  const cached = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'vm1', image], env);
  assert.equal(cached.bytesNew, 0);
  assert.equal(await describes(), cached.id);
});
