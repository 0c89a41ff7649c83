/**
 * `--verify-unchanged N%` below 100 %: exactly the share asked of the blocks the tracking
 * calls unchanged is read (distinct blocks, spread by the random source), a lie in a sampled
 * block is caught, and one outside the sample is not (what a sample can promise).
 */
import assert from 'node:assert/strict';
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { BlockDevice } from '../blockdev/index.js';
import { DiskIndexReader, initRepository, LocalBackend } from '../repo/index.js';
import { openImageSource, withChangedRanges } from '../source/index.js';
import { seededBytes, tempFolders, withRepo } from '../testing/index.js';
import { backupVm } from './backup-vm.js';
import { verifyUnchangedSample } from './verify-unchanged.js';

const tempFolder = tempFolders();
const BLOCK = 64 * 1024;
const BLOCKS = 200;

/** Counts the blocks read, by index. */
function counted(device: BlockDevice, reads: number[]): BlockDevice {
  return { ...device, size: device.size, read: (offset, length, into) => (reads.push(offset / BLOCK), device.read(offset, length, into)), extents: (o, l) => device.extents(o, l), close: () => device.close() };
}

/** A deterministic stand-in for Math.random (a linear congruential sequence in [0, 1)). */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

test('a 10 % sample reads 10 % of the unchanged blocks, distinct; it catches a lie it samples and says which block', async () => {
  const folder = await tempFolder('coffer-verify-sample');
  const path = join(folder, 'disk.raw');
  await writeFile(path, seededBytes(7, BLOCKS * BLOCK));
  const root = join(folder, 'repo');
  await initRepository(new LocalBackend(root), { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: BLOCK, format: 2 });
  await withRepo(new LocalBackend(root), async (repo) => {
    const fullSource = await openImageSource('vm', [path]);
    const parent = await backupVm(repo, fullSource).finally(() => fullSource.close());
    const parentDisk = parent.disks[0];
    assert.ok(parentDisk);
    // Blocks 0-9 "changed" (and truly changed); block 150 changed too, but the list omits it.
    const handle = await open(path, 'r+');
    await handle.write(seededBytes(8, 10 * BLOCK), 0, 10 * BLOCK, 0);
    await handle.write(seededBytes(9, 4096), 0, 4096, 150 * BLOCK);
    await handle.close();
    const source = await openImageSource('vm', [path]);
    try {
      const device = source.disks[0]?.device as BlockDevice;
      const reads: number[] = [];
      const tracked = counted(withChangedRanges(device, [{ offset: 0, length: 10 * BLOCK }]), reads);
      // Over several random sequences: always round(190 × 10 %) = 19 distinct unchanged blocks.
      let caught = 0;
      let missed = 0;
      for (let seed = 1; seed <= 12; seed++) {
        reads.length = 0;
        const verdict = await verifyUnchangedSample(repo, tracked, new DiskIndexReader(repo, parentDisk), 0.1, seeded(seed));
        const sampled = new Set(reads);
        if (verdict === undefined) {
          assert.equal(reads.length, 19, `seed ${seed}: 19 blocks read`);
          assert.equal(sampled.size, 19, 'distinct blocks');
          assert.ok(!sampled.has(150), 'a sample that misses the lie finds nothing');
          missed += 1;
        } else {
          assert.ok(sampled.has(150), `seed ${seed}: the lie was sampled`);
          assert.match(verdict, /^block 150 \(bytes 9830400-9895935\) differs from the parent snapshot/);
          assert.ok(reads.length <= 19);
          caught += 1;
        }
        assert.ok(reads.every((b) => b >= 10), 'changed blocks are never sampled');
      }
      assert.ok(caught > 0 && missed > 0, `over 12 samples of 10 %, some catch the one lie and some miss it (${caught} caught)`);
    } finally {
      await source.close();
    }
  });
});
