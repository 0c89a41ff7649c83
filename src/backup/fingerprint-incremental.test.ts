import assert from 'node:assert/strict';
import { open, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { blockFingerprint, initRepository, LocalBackend, verifyRepository, type FormatVersion, type Repository } from '../repo/index.js';
import { SnapshotDisk } from '../restore/index.js';
import { backupFile, seededBytes, tempFolders, withRepo } from '../testing/index.js';

const tempFolder = tempFolders();
const KiB = 1024;
const BLOCK = 64 * KiB;
const SIZE = 48 * BLOCK;

async function setUp(format: FormatVersion): Promise<{ backend: LocalBackend; image: string; cache: string }> {
  const backend = new LocalBackend(await tempFolder('coffer-repo'));
  await initRepository(backend, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: BLOCK, format });
  const image = join(await tempFolder('coffer-img'), 'disk.raw');
  const data = seededBytes(41, SIZE);
  data.fill(0, 30 * BLOCK, 34 * BLOCK); // zero blocks too
  await writeFile(image, data);
  return { backend, image, cache: await tempFolder('coffer-cache') };
}

function backup(repo: Repository, image: string, cache: string) {
  return backupFile(repo, 'vm1', image, { cacheDirectory: cache });
}

async function writeAt(path: string, offset: number, data: Buffer): Promise<void> {
  const handle = await open(path, 'r+');
  await handle.write(data, 0, data.length, offset);
  await handle.close();
}

/** The disk's cache file (or the older one): its key, and a way to set one block's fingerprint. */
async function cacheOf(cache: string, older = false): Promise<{ key: Buffer; forge: (block: number, bytes: Buffer) => Promise<void> }> {
  const folder = join(cache, 'block-fingerprints');
  const [repository] = await readdir(folder);
  const name = (await readdir(join(folder, repository!))).find((n) => n.endsWith('.older') === older);
  const file = join(folder, repository!, name!);
  const key = (await readFile(file)).subarray(64, 96);
  return {
    key,
    forge: async (block, bytes) => {
      const tag = Buffer.alloc(16);
      blockFingerprint(key, block, bytes, tag, 0);
      await writeAt(file, 128 + 16 * block, tag);
    },
  };
}

for (const format of [1, 2] as const) {
  test(`format ${format}: an incremental with the parent's block fingerprints stores what changed and restores the disk as it is now`, async () => {
    const { backend, image, cache } = await setUp(format);
    await withRepo(backend, async (repo) => {
      const full = await backup(repo, image, cache);
      assert.equal(full.stats.bytesRead, SIZE);
      const { key } = await cacheOf(cache);
      // Two blocks change, one zero block gets data, one data block becomes zeros.
      await writeAt(image, 5 * BLOCK + 100, Buffer.from('changed in place'));
      await writeAt(image, 20 * BLOCK, seededBytes(42, BLOCK));
      await writeAt(image, 31 * BLOCK, seededBytes(43, 4 * KiB));
      await writeAt(image, 40 * BLOCK, Buffer.alloc(BLOCK));
      const incremental = await backup(repo, image, cache);
      assert.equal(incremental.parent, full.id);
      assert.equal(incremental.stats.bytesRead, SIZE, 'every block is read: only the hashing is saved');
      assert.equal(incremental.stats.bytesNew, 3 * BLOCK);
      const now = await readFile(image);
      const disk = new SnapshotDisk(repo, incremental.id, incremental.disks[0]!);
      assert.ok(Buffer.from(await disk.read(0, SIZE)).equals(now), 'the snapshot is the disk as it is now');
      assert.deepEqual((await verifyRepository(repo, { readData: true, now: () => new Date() })).damaged, []);
      // The cache now describes the incremental: the next backup's parent.
      const { key: keyAfter } = await cacheOf(cache);
      assert.deepEqual(keyAfter, key);
      const third = await backup(repo, image, cache);
      assert.equal(third.stats.bytesNew, 0);
      assert.ok(Buffer.from(await new SnapshotDisk(repo, third.id, third.disks[0]!).read(0, SIZE)).equals(now));
    });
  });
}

test('a block whose fingerprint is the parent\'s is not hashed: its parent entry is taken (shown with a forged fingerprint)', async () => {
  const { backend, image, cache } = await setUp(2);
  await withRepo(backend, async (repo) => {
    await backup(repo, image, cache);
    const before = await readFile(image);
    const newBlock = seededBytes(44, BLOCK);
    await writeAt(image, 7 * BLOCK, newBlock);
    await writeAt(image, 9 * BLOCK, seededBytes(45, BLOCK));
    // Block 7's fingerprint in the cache is set to its new content's: the backup must believe
    // it unchanged and take the parent's entry, which it would not do had it hashed the block.
    await (await cacheOf(cache)).forge(7, newBlock);
    const incremental = await backup(repo, image, cache);
    const disk = new SnapshotDisk(repo, incremental.id, incremental.disks[0]!);
    assert.ok(Buffer.from(await disk.read(7 * BLOCK, BLOCK)).equals(before.subarray(7 * BLOCK, 8 * BLOCK)), 'block 7: the parent\'s bytes');
    assert.ok(Buffer.from(await disk.read(9 * BLOCK, BLOCK)).equals((await readFile(image)).subarray(9 * BLOCK, 10 * BLOCK)), 'block 9: hashed, stored anew');
    assert.equal(incremental.stats.bytesNew, BLOCK);
  });
});

test('blocks back to what they were two snapshots ago take that snapshot\'s chunks, unhashed (shown with a forged fingerprint)', async () => {
  const { backend, image, cache } = await setUp(2);
  await withRepo(backend, async (repo) => {
    await backup(repo, image, cache);
    const original = await readFile(image);
    // The second snapshot changes blocks 2, 3 and 11; the third puts 2 and 3 back as they were.
    await writeAt(image, 2 * BLOCK, seededBytes(47, 2 * BLOCK));
    await writeAt(image, 11 * BLOCK, seededBytes(48, BLOCK));
    const second = await backup(repo, image, cache);
    assert.equal(second.stats.bytesNew, 3 * BLOCK);
    await writeAt(image, 2 * BLOCK, original.subarray(2 * BLOCK, 4 * BLOCK));
    // Block 11 gets new bytes, and the older cache is made to say they were its bytes two
    // snapshots ago: taken from there unhashed, the snapshot holds the original block 11.
    const forged = seededBytes(49, BLOCK);
    await writeAt(image, 11 * BLOCK, forged);
    await (await cacheOf(cache, true)).forge(11, forged);
    const third = await backup(repo, image, cache);
    assert.equal(third.stats.bytesNew, 0, 'reverted blocks are chunks stored already');
    const disk = new SnapshotDisk(repo, third.id, third.disks[0]!);
    const now = await readFile(image);
    assert.ok(Buffer.from(await disk.read(2 * BLOCK, 2 * BLOCK)).equals(original.subarray(2 * BLOCK, 4 * BLOCK)), 'blocks 2 and 3: as two snapshots ago');
    assert.ok(Buffer.from(await disk.read(11 * BLOCK, BLOCK)).equals(original.subarray(11 * BLOCK, 12 * BLOCK)), 'block 11: the chunk its fingerprint named, not hashed');
    assert.ok(Buffer.from(await disk.read(0, 2 * BLOCK)).equals(now.subarray(0, 2 * BLOCK)));
    assert.ok(Buffer.from(await disk.read(12 * BLOCK, SIZE - 12 * BLOCK)).equals(now.subarray(12 * BLOCK)));
  });
});

test('without a cache directory every block read is hashed, as before', async () => {
  const { backend, image } = await setUp(2);
  await withRepo(backend, async (repo) => {
    await backupFile(repo, 'vm1', image);
    await writeAt(image, 3 * BLOCK, seededBytes(46, BLOCK));
    const incremental = await backupFile(repo, 'vm1', image);
    assert.equal(incremental.stats.bytesNew, BLOCK);
    assert.ok(Buffer.from(await new SnapshotDisk(repo, incremental.id, incremental.disks[0]!).read(0, SIZE)).equals(await readFile(image)));
  });
});
