/**
 * Scattered changed blocks (a live incremental's usual case: single 64 KiB blocks far apart)
 * are read block by block but hashed in groups: one worker task per 32 blocks, not one per
 * block, and the snapshot still restores byte for byte.
 */
import assert from 'node:assert/strict';
import { open, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { initRepository, LocalBackend } from '../repo/index.js';
import { restoreSnapshot } from '../restore/index.js';
import { openImageSource, withChangedRanges } from '../source/index.js';
import { seededBytes, tempFolders, withRepo } from '../testing/index.js';
import { backupVm } from './backup-vm.js';

const tempFolder = tempFolders();
const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 64 * KiB;

test('40 scattered changed blocks: read alone, hashed in 1 task, restored byte for byte', async () => {
  const folder = await tempFolder('coffer-scattered');
  const path = join(folder, 'disk.raw');
  await writeFile(path, seededBytes(1, 32 * MiB));
  await truncate(path, 64 * MiB); // the second half reads as zeros
  const root = join(folder, 'repo');
  await initRepository(new LocalBackend(root), { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: BLOCK, format: 2 });
  await withRepo(new LocalBackend(root), async (repo) => {
    const fullSource = await openImageSource('vm', [path]);
    const full = await backupVm(repo, fullSource).finally(() => fullSource.close());

    // Every 13th block from block 5 on (1 MiB apart or so), some in the zero half: 40 blocks, no two adjacent.
    const changed = Array.from({ length: 40 }, (_, i) => ({ offset: (5 + i * 13) * BLOCK, length: BLOCK }));
    const handle = await open(path, 'r+');
    for (const [i, range] of changed.entries()) await handle.write(seededBytes(100 + i, 4 * KiB), 0, 4 * KiB, range.offset + (i % 16) * 4 * KiB);
    await handle.close();

    const source = await openImageSource('vm', [path]);
    const disk = source.disks[0];
    assert.ok(disk !== undefined);
    const tracked = { ...source, disks: [{ ...disk, device: withChangedRanges(disk.device, changed), changeTracking: { givenRanges: 'the test' } }] };
    let tasks = 0;
    const hashMany = repo.pool.hashMany.bind(repo.pool);
    repo.pool.hashMany = (data, lengths) => {
      tasks += 1;
      return hashMany(data, lengths);
    };
    const incremental = await backupVm(repo, tracked, { parent: full }).finally(() => source.close());
    assert.equal(incremental.disks[0]?.changeTracking?.method, 'changed-ranges');
    assert.equal(incremental.stats.bytesRead, 40 * BLOCK);
    assert.equal(tasks, 1); // the 40 blocks in one group of up to 64 (4 MiB); one task per block before

    const to = join(folder, 'restored.raw');
    await restoreSnapshot(repo, incremental, { to });
    assert.ok((await readFile(to)).equals(await readFile(path)));
  });
});
