/**
 * A repository in an S3 bucket (a real Ceph RADOS Gateway, src/testing/ceph-s3.ts), through
 * the `coffer` binary: init (and its refusals), backup, restore byte for byte, file-level
 * restore checked against debugfs, instant recovery over NBD checked by qemu-img, verify
 * --read-data, forget + prune, and one-line errors for a missing bucket or a dead endpoint.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseS3Location, S3Backend } from '../repo/index.js';
import { buildExt4Disk, freePort, requireTools, seededBytes, startCephS3, type CephS3, type PartitionedDisk } from '../testing/index.js';
import { assertExit, assertOneLineError, assertSameBytes, coffer, cofferJson, makeWorkDir, removeDir, runTool, startCofferUntil, type BackupJson, type RunningCoffer } from './cli-harness.js';

let s3: CephS3;
let work: string;
let disk: PartitionedDisk;
let bucket: string;
let env: Record<string, string>;
const MiB = 1 << 20;

before(async () => {
  await requireTools('qemu-img', 'debugfs', 'sfdisk', 'mke2fs');
  [s3, work, disk] = await Promise.all([
    startCephS3(),
    makeWorkDir('s3'),
    buildExt4Disk({ name: 's3-gpt', size: 64 * MiB, label: 'gpt', partitionSizeMiB: 48, files: 'small' }),
  ]);
  bucket = await s3.createBucket('cli');
  env = { ...s3.env, COFFER_PASSWORD: 's3 test', XDG_CACHE_HOME: join(work, 'cache') };
});
after(async () => {
  await s3?.stop();
  if (work !== undefined) await removeDir(work);
});

const opts = () => ({ env, timeoutMs: 120_000 });

test('init on a bucket prefix; a second init, or one on a prefix holding other objects, is refused', async () => {
  const repo = `s3:${s3.endpoint}/${bucket}/refusals`;
  // Format 1 (one object per chunk): this file's tests look at or damage chunk objects; format 2's own are in format2*.integ.test.ts.
  assertExit(await coffer(['init', '--format', '1', '-r', repo], opts()), 0);
  const again = await coffer(['init', '--format', '1', '-r', repo], opts());
  assertExit(again, 2);
  assert.match(assertOneLineError(again), /already holds a repository/);
  const foreign = new S3Backend(parseS3Location(`s3:${s3.endpoint}/${bucket}/foreign`), { credentials: s3.credentials });
  await foreign.put('photos/cat.jpg', Buffer.from('meow'));
  foreign.destroy();
  const occupied = await coffer(['init', '--format', '1', '-r', `s3:${s3.endpoint}/${bucket}/foreign`], opts());
  assertExit(occupied, 2);
  assert.match(assertOneLineError(occupied), /not empty \(it holds photos\/cat\.jpg\)/);
});

test('backup, restore, files, serve, verify, forget and prune on S3', async () => {
  const repo = `s3:${s3.endpoint}/${bucket}/site-a/vms`;
  assertExit(await coffer(['init', '--format', '1', '-r', repo], opts()), 0);
  // Two versions of the disk, differing in a MiB after the partition.
  const firstDisk = await variant('first.raw', 1);
  const second = await variant('second.raw', 2);
  const first = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'web01', '--time', '2026-11-20T00:00:00Z', firstDisk], opts());
  const next = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'web01', '--time', '2026-11-21T00:00:00Z', second], opts());
  assert.notEqual(first.id, next.id);

  const restored = join(work, 'restored.raw');
  assertExit(await coffer(['restore', '-r', repo, 'web01:latest', '--to', restored], opts()), 0);
  await assertSameBytes(restored, second);

  // File-level restore, checked against debugfs reading the source disk.
  const partition = `${disk.path}?offset=${disk.partitions[0]?.start}`;
  const listing = await coffer(['files', '-r', repo, 'web01:latest', 'ls', 'p1:/etc'], opts());
  assertExit(listing, 0);
  assert.match(listing.stdout.toString('utf8'), /file-1\.txt/);
  const cat = await coffer(['files', '-r', repo, 'web01:latest', 'cat', 'p1:/etc/file-1.txt'], opts());
  assertExit(cat, 0);
  const oracle = await runTool('debugfs', ['-R', 'cat /etc/file-1.txt', partition]);
  assert.equal(oracle.code, 0, oracle.stderr);
  assert.ok(cat.stdout.length > 0);
  assert.equal(cat.stdout.toString('utf8'), oracle.stdout);

  // Instant recovery: the first snapshot over NBD, compared by qemu-img.
  const socket = join(work, 'nbd.sock');
  const serving = await serve(['serve', '-r', repo, first.id, '--socket', socket]);
  try {
    const compared = await runTool('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', firstDisk, `nbd+unix:///disk0?socket=${socket}`]);
    assert.equal(compared.code, 0, compared.stdout + compared.stderr);
  } finally {
    serving.child.kill('SIGTERM');
    assertExit(await serving.done, 0);
  }

  assertExit(await coffer(['verify', '-r', repo, '--read-data'], opts()), 0);
  const pruned = await cofferJson<{ removed: unknown[]; prune: { chunksRemoved: number; bytesFreed: number } }>(['forget', '-r', repo, '--keep-last', '1', '--prune'], opts());
  assert.equal(pruned.removed.length, 1);
  assert.ok(pruned.prune.chunksRemoved >= 1, 'the MiB only the first version had went');
  assertExit(await coffer(['verify', '-r', repo, '--read-data'], opts()), 0);
  await fs.rm(restored);
  assertExit(await coffer(['restore', '-r', repo, 'web01:latest', '--to', restored], opts()), 0);
  await assertSameBytes(restored, second);

  // The chunk cache listed the pruned chunks as present; the prune made it stale, so backing
  // the first version up again stores them again instead of trusting the cache.
  const cacheFiles = await fs.readdir(join(work, 'cache', 'coffer'));
  assert.deepEqual(cacheFiles.filter((name) => name !== 'block-fingerprints').length, 1, 'one chunk cache, for this repository');
  assert.ok(cacheFiles.includes('block-fingerprints'), 'and the disks\' block fingerprints beside it');
  const again = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'web01', '--time', '2026-11-22T00:00:00Z', firstDisk], opts());
  assert.ok(again.bytesNew >= MiB, `the pruned MiB was stored again (${again.bytesNew} bytes new)`);
  assertExit(await coffer(['verify', '-r', repo, '--read-data'], opts()), 0);
  await fs.rm(restored);
  assertExit(await coffer(['restore', '-r', repo, 'web01:latest', '--to', restored], opts()), 0);
  await assertSameBytes(restored, firstDisk);
});

test('a missing bucket, a dead endpoint, no credentials and a location with a secret are one-line errors with their exit codes', async () => {
  const missing = await coffer(['snapshots', '-r', `s3:${s3.endpoint}/no-such-bucket-here/x`], opts());
  assertExit(missing, 10);
  assert.match(assertOneLineError(missing), /bucket no-such-bucket-here does not exist/);
  const dead = await coffer(['snapshots', '-r', `s3:http://127.0.0.1:${await freePort()}/${bucket}/x`], { ...opts(), env: { ...env, AWS_MAX_ATTEMPTS: '2' } });
  assertExit(dead, 1);
  assert.match(assertOneLineError(dead), /cannot be reached/);
  const noHome = join(work, 'no-home');
  await fs.mkdir(noHome, { recursive: true });
  const anonymous = await coffer(['snapshots', '-r', `s3:${s3.endpoint}/${bucket}/x`], { env: { HOME: noHome, AWS_EC2_METADATA_DISABLED: 'true', COFFER_PASSWORD: 'x' } });
  assertExit(anonymous, 2);
  assert.match(assertOneLineError(anonymous), /no S3 credentials .*AWS_ACCESS_KEY_ID/);
  const malformed = await coffer(['snapshots', '-r', 's3:https://key:secret@example.com/b'], opts());
  assertExit(malformed, 2);
  assert.doesNotMatch(assertOneLineError(malformed), /secret/);
});

/** A copy of the test disk with seeded bytes in the MiB at 55 MiB (past the partition). */
async function variant(name: string, seed: number): Promise<string> {
  const file = join(work, name);
  await fs.copyFile(disk.path, file);
  const handle = await fs.open(file, 'r+');
  await handle.write(seededBytes(seed, MiB), 0, MiB, 55 * MiB);
  await handle.close();
  return file;
}

/** Starts `coffer serve …` and waits until it says where it serves. */
async function serve(args: string[]): Promise<RunningCoffer> {
  return startCofferUntil(args, 'nbd', opts());
}
