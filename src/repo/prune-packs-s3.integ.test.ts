/**
 * Prune of a format 2 repository on a real S3 gateway (Ceph RGW): packs deleted and repacked
 * with S3's plain put/get/ranged get/delete/list (no rename, no listing order), and what is
 * kept restores byte for byte and verifies with --read-data; the prune records the packs it
 * removed (docs/repository-format.md §19.11), so the incrementals after it send no HEAD per
 * pack of their parent.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { backupVm } from '../backup/index.js';
import { restoreSnapshot } from '../restore/index.js';
import { openImageSource } from '../source/index.js';
import { makeTempDir, seededBytes, startCephS3, type CephS3 } from '../testing/index.js';
import { ForwardingBackend } from './backend/forwarding-backend.js';
import { S3Backend } from './backend/s3-backend.js';
import { parseS3Location } from './backend/s3-location.js';
import { pruneRepository } from './prune.js';
import { initRepository, openRepository, type Repository } from './repository.js';
import { deleteSnapshot } from './snapshots.js';
import { verifyRepository } from './verify.js';

const KiB = 1024;
const MiB = 1024 * KiB;
let s3: CephS3 | undefined;
let work: { path: string; remove(): Promise<void> } | undefined;
let backend: S3Backend | undefined;

before(async () => {
  s3 = await startCephS3();
  work = await makeTempDir('coffer-prune-s3');
});
after(async () => {
  backend?.destroy();
  await s3?.stop();
  await work?.remove();
});

async function backup(repo: Repository, vm: string, path: string) {
  const source = await openImageSource(vm, [path]);
  return backupVm(repo, source).finally(() => source.close());
}

/** Counts the `has` (a HEAD on S3) of packs made through it. */
class PackHeads extends ForwardingBackend {
  heads = 0;
  override has(key: string): Promise<boolean> {
    if (key.startsWith('packs/')) this.heads++;
    return super.has(key);
  }
}

async function count(prefix: string): Promise<number> {
  let n = 0;
  for await (const _ of (backend as S3Backend).list(prefix)) n++;
  return n;
}

test('format 2 prune on Ceph RGW: one pack deleted, one repacked; the kept snapshot restores and verifies', async () => {
  const cluster = s3 as CephS3;
  const dir = (work as { path: string }).path;
  const bucket = await cluster.createBucket('prune-v2');
  backend = new S3Backend(parseS3Location(`s3:${cluster.endpoint}/${bucket}/repo`), { credentials: cluster.credentials });
  await initRepository(backend, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * KiB, format: 2 });
  const first = seededBytes(51, 2 * MiB);
  const firstPath = join(dir, 'a1.raw');
  const secondPath = join(dir, 'a2.raw');
  const otherPath = join(dir, 'b.raw');
  await writeFile(firstPath, first);
  await writeFile(secondPath, Buffer.concat([seededBytes(52, 768 * KiB), first.subarray(768 * KiB)]));
  await writeFile(otherPath, seededBytes(53, 1 * MiB));
  const repo = await openRepository(backend, { passphrase: 'pw', threads: 2 });
  try {
    const old = await backup(repo, 'a', firstPath);
    const kept = await backup(repo, 'a', secondPath);
    const other = await backup(repo, 'b', otherPath);
    await deleteSnapshot(repo, old.id);
    await deleteSnapshot(repo, other.id);
    assert.equal(await count('packs/'), 3);
    const report = await pruneRepository(repo);
    assert.deepEqual([report.packs?.packsDeleted, report.packs?.packsRepacked, report.packs?.packsKept, report.packs?.chunksCopied], [1, 1, 1, 20]);
    assert.equal(await count('packs/'), 2);
    assert.equal(await count('segments/'), 2);
    const to = join(dir, 'restored.raw');
    await restoreSnapshot(repo, kept, { to });
    assert.ok((await readFile(to)).equals(await readFile(secondPath)));
    assert.deepEqual((await verifyRepository(repo, { readData: true, now: () => new Date() })).damaged, []);
    assert.equal(await count('removed-packs/'), 1, 'the prune recorded the packs it removed');
  } finally {
    await repo.close();
  }
  // The incremental after the prune (its parent predates it) and the one after that: no HEAD of a pack.
  const heads = new PackHeads(backend);
  const counted = await openRepository(heads, { passphrase: 'pw', threads: 2 });
  try {
    const afterPrune = await backup(counted, 'a', secondPath);
    assert.match(afterPrune.prunedThrough ?? '', /^000000000001\.[0-9a-f]{32}$/);
    const next = await backup(counted, 'a', secondPath);
    assert.equal(next.prunedThrough, afterPrune.prunedThrough);
    assert.equal(heads.heads, 0, 'no HEAD of a pack (one per pack the parent names before)');
    const to = join(dir, 'restored-next.raw');
    await restoreSnapshot(counted, next, { to });
    assert.ok((await readFile(to)).equals(await readFile(secondPath)));
  } finally {
    await counted.close();
  }
});

test('format 2 prune on Ceph RGW with Object Lock: small index segments still locked are not merged (nothing deleted), and counted', async () => {
  const cluster = s3 as CephS3;
  const dir = (work as { path: string }).path;
  const bucket = await cluster.createBucket('merge-locked', undefined, { objectLock: true });
  const locked = new S3Backend(parseS3Location(`s3:${cluster.endpoint}/${bucket}/repo`), { credentials: cluster.credentials });
  try {
    // ~24 s: longer than this test, short enough to leave nothing locked for long.
    await initRepository(locked, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * KiB, format: 2, objectLock: { mode: 'compliance', days: 0.00028 } });
    const repo = await openRepository(locked, { passphrase: 'pw', threads: 2 });
    try {
      for (let vm = 0; vm < 8; vm++) {
        const path = join(dir, `small-${vm}.raw`);
        await writeFile(path, seededBytes(70 + vm, 64 * KiB));
        await backup(repo, `vm${vm}`, path);
      }
      const segments = async () => {
        let n = 0;
        for await (const _ of locked.list('segments/')) n++;
        return n;
      };
      assert.equal(await segments(), 8);
      const report = await pruneRepository(repo);
      assert.deepEqual(report.segments, { segmentsBefore: 8, segmentsMerged: 0, segmentsWritten: 0, stillLocked: 8 });
      assert.equal(await segments(), 8);
    } finally {
      await repo.close();
    }
  } finally {
    locked.destroy();
  }
});
