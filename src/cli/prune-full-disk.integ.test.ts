/**
 * A local repository on a disk that backups filled to the last block can still be pruned:
 * `init` keeps a space reserve (`reserve`, 16 MiB); prune, finding no room for its lease,
 * segments and pack-removal record, deletes the reserve, deletes the packs no snapshot uses,
 * then repacks the half-used ones one pack's worth at a time (each step needs the room of one
 * pack), and writes the reserve back. Without a reserve it finds what room there is, or says
 * what to do. Real ext4 through a loop device (root, as CI runs); the tests share it, one
 * after the other, each emptying it first.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
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
beforeEach(async () => {
  for (const name of await fs.readdir(disk.mountPoint)) if (name !== 'lost+found') await fs.rm(join(disk.mountPoint, name), { recursive: true });
});

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

/** A raw image of `parts` beside the mount. */
async function image(name: string, parts: Buffer[]): Promise<string> {
  const file = join(disk.beside, `${name}.raw`);
  await fs.writeFile(file, Buffer.concat(parts));
  return file;
}

/**
 * Disks of 12 MiB backed up as VMs a and b; b shares half of a's blocks, so a's packs are
 * about half unused once a is forgotten (a repack, not a delete). The shared blocks alternate
 * with each disk's own, block by block (256 KiB, the default): blocks complete out of order
 * (2 MiB groups on several threads, backup-disk.ts), and every frame and pack of a still holds
 * both. With the shared half after a's own half, a loaded machine once packed a's own blocks
 * alone and the dry run found a pack to delete, not repack (CI of 2026-11-29). Returns b's
 * snapshot and image.
 */
async function backUpSharingPair(repo: string): Promise<{ b: string; bImage: string }> {
  const shared = seededBytes(1, 6 * MiB);
  const a = await image('a', alternate(seededBytes(2, 6 * MiB), shared));
  const bImage = await image('b', alternate(seededBytes(3, 6 * MiB), shared));
  await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'a', a], opts);
  const b = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'b', bImage], opts);
  return { b: b.id, bImage };
}

/** The 256 KiB blocks of `own` and `shared` taken in turn. */
function alternate(own: Buffer, shared: Buffer): Buffer[] {
  const block = 256 * 1024;
  const parts: Buffer[] = [];
  for (let at = 0; at < own.length; at += block) parts.push(own.subarray(at, at + block), shared.subarray(at, at + block));
  return parts;
}

interface PruneJson {
  bytesFreed: number;
  spaceReserve?: { released: boolean; missing: boolean; restored: boolean; written: boolean };
  packs: { packsDeleted: number; packsRepacked: number; repacksPostponed: number; packsWritten: number };
}

/** Forgets every snapshot but VM b's. */
async function forgetAllButB(repo: string): Promise<void> {
  const snapshots = await cofferJson<{ id: string; vm: string }[]>(['snapshots', '-r', repo], opts);
  assertExit(await coffer(['forget', '-r', repo, ...snapshots.filter((s) => s.vm !== 'b').map((s) => s.id)], opts), 0);
}

/** verify --read-data passes and b restores byte for byte. */
async function assertBWhole(repo: string, b: string, bImage: string): Promise<void> {
  assertExit(await coffer(['verify', '-r', repo, '--read-data'], opts), 0);
  const restored = join(disk.beside, 'b-restored.raw');
  assertExit(await coffer(['restore', '-r', repo, b, '--to', restored], opts), 0);
  await assertSameBytes(restored, bImage);
  await fs.rm(restored);
}

async function freeBytes(): Promise<number> {
  const stats = await fs.statfs(disk.mountPoint);
  return stats.bavail * stats.bsize;
}

test('prune on a disk full to the last block deletes what no snapshot uses, through the space reserve, repacks pack by pack, and puts the reserve back', async () => {
  const repo = join(disk.mountPoint, 'repo');
  assertExit(await coffer(['init', '-r', repo], opts), 0);
  assert.equal((await fs.stat(join(repo, 'reserve'))).size, 16 * MiB, 'init keeps 16 MiB for prune');
  const { b, bImage } = await backUpSharingPair(repo);
  // More backups until the disk is full; the one that finds no room stops with exit 5.
  let exit = 0;
  for (let i = 0; exit === 0 && i < 20; i++) {
    const result = await coffer(['backup', '-r', repo, '--vm', `c${i}`, await image(`c${i}`, [seededBytes(100 + i, 12 * MiB)])], opts);
    exit = result.code ?? -1;
    await fs.rm(join(disk.beside, `c${i}.raw`));
  }
  assert.equal(exit, 5, 'backups filled the disk');
  await fillUp(join(disk.mountPoint, 'other-data'));
  assert.equal(await freeBytes(), 0, 'not one block is free');

  await forgetAllButB(repo);
  const pruned = await coffer(['prune', '-r', repo, '--json'], opts);
  assertExit(pruned, 0);
  const report = JSON.parse(pruned.stdout.toString()) as PruneJson;
  assert.deepEqual(report.spaceReserve, { released: true, missing: false, restored: true, written: true }, 'the reserve was used, then written back');
  assert.ok(report.packs.packsDeleted >= 2, `${report.packs.packsDeleted} packs deleted`);
  assert.ok(report.packs.packsRepacked >= 1 && report.packs.packsWritten >= 1, "a's half-used pack was repacked once the deletes made room");
  assert.equal(report.packs.repacksPostponed, 0);
  assert.equal((await fs.stat(join(repo, 'reserve'))).size, 16 * MiB);
  assert.ok((await freeBytes()) > 12 * MiB, `space came back: ${await freeBytes()} bytes free`);

  // The kept snapshot is whole, a new backup fits, and the next prune has nothing left to do.
  await assertBWhole(repo, b, bImage);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'd', bImage], opts), 0);
  const text = await coffer(['prune', '-r', repo], opts);
  assertExit(text, 0);
  assert.doesNotMatch(text.stdout.toString(), /disk was full/);
});

test('a full disk where only a repack frees space: the repack runs in the reserve\'s room and the space comes back', async () => {
  const repo = join(disk.mountPoint, 'repo');
  assertExit(await coffer(['init', '-r', repo], opts), 0);
  const { b, bImage } = await backUpSharingPair(repo);
  await fillUp(join(disk.mountPoint, 'other-data'));
  assert.equal(await freeBytes(), 0);

  await forgetAllButB(repo);
  const dryRun = JSON.parse((await coffer(['prune', '-r', repo, '--dry-run', '--json'], opts)).stdout.toString()) as PruneJson;
  assert.equal(dryRun.packs.packsDeleted, 0, 'no pack is wholly unused: only a repack gives space back');
  assert.ok(dryRun.packs.packsRepacked >= 1);
  const pruned = await coffer(['prune', '-r', repo, '--json'], opts);
  assertExit(pruned, 0);
  const report = JSON.parse(pruned.stdout.toString()) as PruneJson;
  assert.deepEqual(report.spaceReserve, { released: true, missing: false, restored: true, written: true });
  assert.equal(report.packs.packsRepacked, dryRun.packs.packsRepacked, 'what the dry run promised');
  assert.equal(report.packs.repacksPostponed, 0);
  assert.ok((await freeBytes()) >= 4 * MiB, `the unused part of a's pack came back beside the reserve: ${await freeBytes()} bytes free`);
  await assertBWhole(repo, b, bImage);
});

test('a full disk and no space reserve (an older repository): prune says what to do, then finds the room it needs in a few free blocks', async () => {
  const repo = join(disk.mountPoint, 'repo');
  assertExit(await coffer(['init', '-r', repo], opts), 0);
  await fs.rm(join(repo, 'reserve'));
  const { b, bImage } = await backUpSharingPair(repo);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'c', await image('c', [seededBytes(100, 12 * MiB)])], opts), 0);
  const other = join(disk.mountPoint, 'other-data');
  await fillUp(other);
  await forgetAllButB(repo);

  const refused = await coffer(['prune', '-r', repo], opts);
  assertExit(refused, 5);
  assert.match(refused.stderr.toString(), /no space reserve.*free a few MiB/s);
  assert.doesNotMatch(refused.stderr.toString(), /\n\s+at /, 'no stack trace');

  // 256 KiB: room for the lease, segments and records, not for the repack's new pack.
  await fs.truncate(join(other, 'big'), (await fs.stat(join(other, 'big'))).size - 256 * 1024);
  const pruned = await coffer(['prune', '-r', repo, '--json'], opts);
  assertExit(pruned, 0);
  const report = JSON.parse(pruned.stdout.toString()) as PruneJson;
  assert.deepEqual(report.spaceReserve, { released: false, missing: true, restored: true, written: true }, 'the repository has a reserve now');
  assert.ok(report.packs.packsDeleted >= 1, "c's packs were deleted first");
  assert.ok(report.packs.packsRepacked >= 1, "then a's half-used pack was repacked");
  assert.equal((await fs.stat(join(repo, 'reserve'))).size, 16 * MiB);
  await assertBWhole(repo, b, bImage);
});
