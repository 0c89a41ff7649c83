import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempFolders } from '../testing/index.js';
import { BlockFingerprints } from './block-fingerprints.js';

const tempFolder = tempFolders();
const where = { repository: '0123456789abcdef0123456789abcdef', vm: 'vm1', disk: 'disk0' };
const geometry = { size: 10 * 65536 + 1, blockSize: 65536 }; // 11 blocks, the last one short
const S1 = '11'.repeat(32);
const S2 = '22'.repeat(32);

/** 16 bytes that differ per block and per `seed`. */
function tag(block: number, seed: number): Buffer {
  return Buffer.alloc(16, (block * 7 + seed) % 251 + 1);
}

function tags(blocks: number[], seed: number): Buffer {
  return Buffer.concat(blocks.map((b) => tag(b, seed)));
}

async function cacheFiles(directory: string): Promise<string[]> {
  const folder = join(directory, 'block-fingerprints', where.repository);
  return (await readdir(folder)).map((name) => join(folder, name));
}

test('fingerprints recorded for a snapshot are expected by the backup whose parent it is, and by no other', async () => {
  const directory = await tempFolder('coffer-fp');
  const first = BlockFingerprints.open(directory, where, geometry, {});
  assert.ok(first);
  assert.equal(first.hasPrevious, false);
  assert.deepEqual(first.expected([0, 1, 2]), Buffer.alloc(48), 'none known without a parent');
  first.record([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], tags([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 1));
  first.commit(S1);

  const next = BlockFingerprints.open(directory, where, geometry, { parent: S1 });
  assert.ok(next);
  assert.equal(next.hasPrevious, true);
  assert.deepEqual(next.key, first.key, 'the key carries over, or no fingerprint could match');
  assert.deepEqual(next.expected([3, 4, 9, 10]), tags([3, 4, 9, 10], 1));
  assert.deepEqual(next.expected([7, 2]), tags([7, 2], 1), 'indexes in any order');
  next.discard();

  const other = BlockFingerprints.open(directory, where, geometry, { parent: S2 });
  assert.ok(other);
  assert.equal(other.hasPrevious, false, 'a cache of another snapshot is not the parent\'s');
  assert.deepEqual(other.expected([3]), Buffer.alloc(16));
  assert.notDeepEqual(other.key, first.key);
  other.discard();

  const resized = BlockFingerprints.open(directory, where, { size: geometry.size + 65536, blockSize: 65536 }, { parent: S1 });
  assert.equal(resized?.hasPrevious, false, 'a resized disk');
  resized?.discard();
  const recut = BlockFingerprints.open(directory, where, { size: geometry.size, blockSize: 4096 }, { parent: S1 });
  assert.equal(recut?.hasPrevious, false, 'other blocks');
  recut?.discard();
  const otherDisk = BlockFingerprints.open(directory, { ...where, disk: 'disk1' }, geometry, { parent: S1 });
  assert.equal(otherDisk?.hasPrevious, false, 'another disk of the VM');
  otherDisk?.discard();
  assert.equal((await cacheFiles(directory)).length, 1, 'discarded caches leave no file');
});

test('a committed cache replaces the parent\'s: recorded blocks get their new fingerprints, carried ones keep theirs, the rest none', async () => {
  const directory = await tempFolder('coffer-fp');
  const first = BlockFingerprints.open(directory, where, geometry, {})!;
  first.record([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], tags([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 1));
  first.commit(S1);

  const second = BlockFingerprints.open(directory, where, geometry, { parent: S1 })!;
  second.record([2, 3], tags([2, 3], 2)); // read and fingerprinted again
  second.carry([5, 6, 7, 10]); // unchanged by change tracking, unread
  second.commit(S2); // 0, 1, 4, 8, 9: zero extents or patched blocks, not known

  const third = BlockFingerprints.open(directory, where, geometry, { parent: S2 })!;
  assert.deepEqual(third.expected([2, 3]), tags([2, 3], 2));
  assert.deepEqual(third.expected([5, 6, 7, 10]), tags([5, 6, 7, 10], 1));
  for (const block of [0, 1, 4, 8, 9]) assert.deepEqual(third.expected([block]), Buffer.alloc(16), `block ${block}`);
  third.discard();
  const old = BlockFingerprints.open(directory, where, geometry, { parent: S1 });
  assert.equal(old?.hasPrevious, false, 'the parent\'s cache is gone');
  old?.discard();
});

test('a backup that fails keeps the parent\'s cache; the file is private to its owner', async () => {
  const directory = await tempFolder('coffer-fp');
  const first = BlockFingerprints.open(directory, where, geometry, {})!;
  first.record([4], tag(4, 1));
  first.commit(S1);
  const failed = BlockFingerprints.open(directory, where, geometry, { parent: S1 })!;
  failed.record([4], tag(4, 9));
  failed.discard();
  const again = BlockFingerprints.open(directory, where, geometry, { parent: S1 })!;
  assert.deepEqual(again.expected([4]), tag(4, 1));
  again.discard();
  const [file] = await cacheFiles(directory);
  assert.equal((await stat(file!)).mode & 0o777, 0o600);
  assert.equal((await stat(join(directory, 'block-fingerprints'))).mode & 0o777, 0o700);
});

test('a damaged cache is ignored (hashing instead), never an error', async () => {
  const directory = await tempFolder('coffer-fp');
  const first = BlockFingerprints.open(directory, where, geometry, {})!;
  first.record([0, 1], tags([0, 1], 1));
  first.commit(S1);
  const [file] = await cacheFiles(directory);

  await truncate(file!, 128 + 16 * 5); // cut short
  assert.equal(BlockFingerprints.open(directory, where, geometry, { parent: S1 })?.hasPrevious, false);

  await writeFile(file!, Buffer.from('not a cache at all'));
  const garbage = BlockFingerprints.open(directory, where, geometry, { parent: S1 });
  assert.equal(garbage?.hasPrevious, false);
  garbage?.commit(S2); // and a new one is written over it
  assert.equal((await readFile(file!)).subarray(0, 4).toString(), 'CBFP');

  // No place to write a cache: the backup goes on without one.
  const notADirectory = join(await tempFolder('coffer-fp'), 'file');
  await writeFile(notADirectory, '');
  assert.equal(BlockFingerprints.open(notADirectory, where, geometry, {}), undefined);
});

test('sweep removes caches not written for 45 days and files of killed backups older than a day, then empty folders', async () => {
  const directory = await tempFolder('coffer-fp');
  const kept = BlockFingerprints.open(directory, where, geometry, {})!;
  kept.commit(S1);
  const stale = BlockFingerprints.open(directory, { ...where, vm: 'gone' }, geometry, {})!;
  stale.commit(S1);
  const killed = BlockFingerprints.open(directory, { ...where, vm: 'killed' }, geometry, {})!; // never committed nor discarded
  const elsewhere = BlockFingerprints.open(directory, { ...where, repository: 'f'.repeat(32) }, geometry, {})!;
  elsewhere.commit(S1);
  assert.equal((await cacheFiles(directory)).length, 3);
  const day = 24 * 3600 * 1000;
  const now = Date.now();
  // Age the files: "gone" 46 days, the killed backup's temporary file 2 days, the other repository's cache 46 days.
  const byVm = (vm: string) => join(directory, 'block-fingerprints', where.repository, createHash('sha256').update(`${vm}\0${where.disk}`).digest('hex'));
  await utimes(byVm('gone'), new Date(now - 46 * day), new Date(now - 46 * day));
  const temp = (await cacheFiles(directory)).find((f) => f.includes('.tmp-'))!;
  await utimes(temp, new Date(now - 2 * day), new Date(now - 2 * day));
  const otherFolder = join(directory, 'block-fingerprints', 'f'.repeat(32));
  const [otherFile] = await readdir(otherFolder);
  await utimes(join(otherFolder, otherFile!), new Date(now - 46 * day), new Date(now - 46 * day));
  BlockFingerprints.sweep(directory, now);
  assert.deepEqual(await cacheFiles(directory), [byVm('vm1')]);
  await assert.rejects(readdir(otherFolder), { code: 'ENOENT' });
  killed.discard();
});

test('the parent\'s cache becomes the older one: expected again when it describes the parent\'s parent and shares the key', async () => {
  const directory = await tempFolder('coffer-fp');
  const first = BlockFingerprints.open(directory, where, geometry, {})!;
  first.record([0, 1, 2], tags([0, 1, 2], 1));
  first.commit(S1);
  const second = BlockFingerprints.open(directory, where, geometry, { parent: S1 })!;
  assert.equal(second.hasOlder, false, 'no older cache yet');
  second.record([0, 1, 2], tags([0, 1, 2], 2));
  second.commit(S2);

  const third = BlockFingerprints.open(directory, where, geometry, { parent: S2, grandparent: S1 })!;
  assert.equal(third.hasPrevious, true);
  assert.equal(third.hasOlder, true);
  assert.deepEqual(third.expected([0, 1, 2]), tags([0, 1, 2], 2));
  assert.deepEqual(third.expectedOlder([0, 1, 2]), tags([0, 1, 2], 1));
  third.discard();
  const wrongGrandparent = BlockFingerprints.open(directory, where, geometry, { parent: S2, grandparent: '33'.repeat(32) })!;
  assert.equal(wrongGrandparent.hasOlder, false);
  assert.deepEqual(wrongGrandparent.expectedOlder([0]), Buffer.alloc(16));
  wrongGrandparent.discard();
  const noParent = BlockFingerprints.open(directory, where, geometry, { grandparent: S1 })!;
  assert.equal(noParent.hasOlder, false, 'an older cache is read only beside its parent\'s');
  // A cache written without its parent's (a new lineage) leaves no older one behind.
  noParent.commit('44'.repeat(32));
  assert.deepEqual((await cacheFiles(directory)).map((f) => f.endsWith('.older')), [false]);
});
