/**
 * A local repository on a disk that backups filled to the last block can still be pruned:
 * `init` keeps a space reserve (`reserve`, 16 MiB); prune, finding no room for its lease,
 * segments and pack-removal record, deletes the reserve, deletes what no snapshot uses
 * without repacking (which would write new packs), and writes the reserve back. Real ext4
 * through a loop device (root, as CI runs).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { mountSmallExt4, seededBytes, type SmallExt4 } from '../testing/index.js';
import { assertExit, assertSameBytes, coffer, cofferJson, type BackupJson } from './cli-harness.js';

const env = { COFFER_PASSWORD: 'full disk' };
const opts = { env, timeoutMs: 180_000 };
const MiB = 1 << 20;
let disk: SmallExt4;

before(async () => {
  disk = await mountSmallExt4('prune-full-disk', 96 * MiB);
});
after(() => disk.remove());

/** Fills what is left of the filesystem: one big file, then small ones for the last blocks. */
async function fillUp(dir: string): Promise<void> {
  await fs.mkdir(dir);
  const big = await fs.open(join(dir, 'big'), 'w');
  try {
    for (;;) await big.write(Buffer.alloc(MiB));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    await big.close();
  }
  for (let i = 0; ; i++) {
    try {
      await fs.writeFile(join(dir, `small-${i}`), 'x');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      return;
    }
  }
}

test('prune on a disk full to the last block deletes what no snapshot uses, through the space reserve, and puts the reserve back', async () => {
  const repo = join(disk.mountPoint, 'repo');
  assertExit(await coffer(['init', '-r', repo], opts), 0);
  assert.equal((await fs.stat(join(repo, 'reserve'))).size, 16 * MiB, 'init keeps 16 MiB for prune');

  // Disks of 12 MiB; b shares half of a's blocks, so a's pack is half used once a is forgotten.
  const image = async (name: string, parts: Buffer[]): Promise<string> => {
    const file = join(disk.beside, `${name}.raw`);
    await fs.writeFile(file, Buffer.concat(parts));
    return file;
  };
  const shared = seededBytes(1, 6 * MiB);
  const a = await image('a', [seededBytes(2, 6 * MiB), shared]);
  const b = await image('b', [seededBytes(3, 6 * MiB), shared]);
  const ids: string[] = [];
  for (const [vm, file] of [['a', a], ['b', b]] as const) {
    const backup = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', vm, file, '--json'], opts);
    ids.push(backup.id);
  }
  // More backups until the disk is full; the one that finds no room stops with exit 5.
  let exit = 0;
  for (let i = 0; exit === 0 && i < 20; i++) {
    const result = await coffer(['backup', '-r', repo, '--vm', `c${i}`, await image(`c${i}`, [seededBytes(100 + i, 12 * MiB)])], opts);
    exit = result.code ?? -1;
    await fs.rm(join(disk.beside, `c${i}.raw`));
  }
  assert.equal(exit, 5, 'backups filled the disk');
  await fillUp(join(disk.mountPoint, 'other-data'));
  const before = await fs.statfs(disk.mountPoint);
  assert.equal(before.bavail, 0, 'not one block is free');

  const snapshots = await cofferJson<{ id: string; vm: string }[]>(['snapshots', '-r', repo, '--json'], opts);
  const forgotten = snapshots.filter((s) => s.vm !== 'b').map((s) => s.id);
  assertExit(await coffer(['forget', '-r', repo, ...forgotten], opts), 0);
  const pruned = await coffer(['prune', '-r', repo, '--json'], opts);
  assertExit(pruned, 0);
  const report = JSON.parse(pruned.stdout.toString()) as { bytesFreed: number; spaceReserve?: { released: boolean; restored: boolean }; packs: { packsDeleted: number; repacksPostponed: number; packsWritten: number } };
  assert.deepEqual(report.spaceReserve, { released: true, restored: true }, 'the reserve was used, then written back');
  assert.ok(report.packs.packsDeleted >= 2, `${report.packs.packsDeleted} packs deleted`);
  assert.equal(report.packs.packsWritten, 0, 'nothing repacked on a full disk');
  assert.ok(report.packs.repacksPostponed >= 1, 'a\'s half-used pack waits for a prune with room');
  assert.equal((await fs.stat(join(repo, 'reserve'))).size, 16 * MiB);
  const after = await fs.statfs(disk.mountPoint);
  assert.ok(after.bavail * after.bsize > 12 * MiB, `space came back: ${after.bavail * after.bsize} bytes free`);

  // The kept snapshot is whole, a new backup fits, and a prune with room repacks what waited.
  assertExit(await coffer(['verify', '-r', repo, '--read-data'], opts), 0);
  const restored = join(disk.beside, 'b-restored.raw');
  assertExit(await coffer(['restore', '-r', repo, ids[1] as string, '--to', restored], opts), 0);
  await assertSameBytes(restored, b);
  await fs.rm(restored);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'd', a], opts), 0);
  const text = await coffer(['prune', '-r', repo], opts);
  assertExit(text, 0);
  assert.doesNotMatch(text.stdout.toString(), /disk was full/);
});
