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
import { coffer, cofferJson, makeWorkDir, removeDir, type BackupJson } from './cli-harness.js';

/** Writes a byte of the image again as it is: its times move, so the next backup reads it. */
async function touch(image: string): Promise<void> {
  const handle = await open(image, 'r+');
  const byte = Buffer.alloc(1);
  await handle.read(byte, 0, 1, 0);
  await handle.write(byte, 0, 1, 0);
  await handle.close();
}

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
  assert.equal(first.bytesMatched, 0, 'nothing to match on the first backup');
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
  assert.equal(uncached.bytesMatched, 0, '--no-cache: every block hashed');
  assert.equal(await describes(), first.id, '--no-cache left the cache as it was');
  assert.deepEqual(await readdir(join(folder, repository!)), [file.split('/').at(-1)], 'and wrote nothing beside it');

  await touch(image); // read in full again (an untouched image is skipped by chain tracking)
  const cached = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'vm1', image], env);
  assert.equal(cached.bytesNew, 0);
  assert.equal(cached.bytesMatched, 0, 'its parent is not the snapshot the cache describes: every block hashed');
  assert.equal(await describes(), cached.id);

  // Now the cache describes the parent: a change of one block leaves the rest unhashed, and
  // the summary says so.
  const again = await open(image, 'r+');
  await again.write(Buffer.from('again'), 0, 5, 2 * 1024 * 1024);
  await again.close();
  const matched = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'vm1', image], env);
  assert.equal(matched.bytesRead, 4 * 1024 * 1024);
  assert.equal(matched.bytesMatched, 4 * 1024 * 1024 - 256 * 1024, 'all but the changed 256 KiB block');
  await touch(image); // every block matches
  const summary = await coffer(['backup', '-r', repo, '--vm', 'vm1', image], env);
  assert.match(summary.stdout.toString(), /read 4\.00 MiB \(4\.00 MiB of it unchanged by fingerprint, not hashed\)/);
});
