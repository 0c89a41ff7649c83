import assert from 'node:assert/strict';
import { open, readdir, readFile, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { initRepository, LocalBackend, type Repository } from '../repo/index.js';
import { SnapshotDisk } from '../restore/index.js';
import { backupFile, mountSmallExt4, runTool, seededBytes, type SmallExt4, withRepo } from '../testing/index.js';

/**
 * The block fingerprint cache on a real ext4 filesystem (mke2fs, 1 KiB blocks, loop mount)
 * with no room: the cache is an optimisation, so the backup succeeds whether the cache cannot
 * be created at all or runs out of room mid-backup, and leaves no partial cache behind.
 */
const KiB = 1024;
const MiB = 1024 * KiB;
/** 1,024 blocks of 64 KiB: 16 KiB of fingerprints, twice the room the second backup is left. */
const SIZE = 64 * MiB;

let fs: SmallExt4 | undefined;
let mountPoint: string | undefined;

before(async () => {
  fs = await mountSmallExt4('fingerprint-cache-full', 4 * MiB, { blockSize: 1024 });
  mountPoint = fs.mountPoint;
});

after(async () => {
  await fs?.remove();
});

/** Leaves `blocks` free 1 KiB blocks on the mount (a filler file takes the rest). */
async function leaveFree(blocks: number): Promise<void> {
  const root = mountPoint as string;
  const filler = join(root, 'filler');
  await writeFile(filler, '');
  const free = async () => {
    await runTool('sync', []); // ext4 reserves room for delayed writes until they are written
    const s = await statfs(root);
    return s.bavail * s.bsize;
  };
  // Grow the filler until the room left is `blocks` blocks (its own extent blocks take some too).
  for (let round = 0; round < 8 && (await free()) > blocks * KiB; round++) {
    const size = (await readFile(filler)).length + (await free()) - blocks * KiB;
    await writeFile(filler, Buffer.alloc(size, 1));
  }
  assert.ok((await free()) <= blocks * KiB, `${await free()} bytes free`);
}

function backup(repo: Repository, image: string, cache: string) {
  return backupFile(repo, 'vm1', image, { cacheDirectory: cache });
}

test('a cache directory with no room, or too little, never fails a backup and is left with no partial cache', async () => {
  const root = mountPoint as string;
  const cache = join(root, 'cache');
  const beside = (fs as SmallExt4).beside;
  const backend = new LocalBackend(join(beside, 'repo'));
  await initRepository(backend, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * KiB });
  const image = join(beside, 'disk.raw');
  await writeFile(image, seededBytes(61, SIZE));

  await withRepo(backend, async (repo) => {
    await leaveFree(0);
    const full = await backup(repo, image, cache);
    assert.ok(Buffer.from(await new SnapshotDisk(repo, full.id, full.disks[0]!).read(0, SIZE)).equals(await readFile(image)));

    // Room for the folders, the header and the file's last block, not for the fingerprints between.
    await runTool('rm', ['-f', join(root, 'filler')]);
    await leaveFree(8);
    const handle = await open(image, 'r+'); // changed: read in full (an unchanged image is skipped by chain tracking)
    await handle.write(Buffer.from('changed'), 0, 7, 5 * MiB);
    await handle.close();
    const incremental = await backup(repo, image, cache);
    assert.equal(incremental.parent, full.id);
    assert.ok(Buffer.from(await new SnapshotDisk(repo, incremental.id, incremental.disks[0]!).read(0, SIZE)).equals(await readFile(image)));
  });
  const left = await readdir(join(cache, 'block-fingerprints')).then(async (repositories) => (await Promise.all(repositories.map((r) => readdir(join(cache, 'block-fingerprints', r))))).flat()).catch(() => []);
  assert.deepEqual(left, [], 'no cache and no temporary file left');
});
