/**
 * Prune of a format 2 repository (pack-plan.ts, pack-sweep.ts, repack-writer.ts) on real
 * repositories in local directories: one fixture (four backups, two forgotten) copied per test.
 */
import assert from 'node:assert/strict';
import { cp, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isCofferError } from '../errors/index.js';
import { restoreSnapshot } from '../restore/index.js';
import { backupFile, makeTempDir, seededBytes, withRepo } from '../testing/index.js';
import { FaultyBackend, type Fault } from './backend/faulty-backend.js';
import { LocalBackend } from './backend/local-backend.js';
import { readTrailer } from './pack-plan.js';
import { pruneRepository } from './prune.js';
import { initRepository, type Repository } from './repository.js';
import { deleteSnapshot, listSnapshots, type Snapshot } from './snapshots.js';
import { verifyRepository } from './verify.js';

const KiB = 1024;
const MiB = 1024 * KiB;
let work: { path: string; remove(): Promise<void> };
let template: string;
/** The images of the snapshots that stay: VM a's second backup (two disks), VM c. */
const images = { a0: '', a1: '', c: '', b: '' };
let copies = 0;

async function backup(repo: Repository, vm: string, paths: string[]): Promise<Snapshot> {
  return backupFile(repo, vm, paths);
}

async function image(name: string, data: Buffer): Promise<string> {
  const path = join(work.path, name);
  await writeFile(path, data);
  return path;
}

before(async () => {
  work = await makeTempDir('coffer-prune-packs');
  template = join(work.path, 'template');
  const backend = new LocalBackend(template);
  await initRepository(backend, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * KiB, format: 2 });
  const first = seededBytes(1, 2 * MiB);
  images.a1 = await image('a1.raw', seededBytes(5, 512 * KiB));
  images.a0 = await image('a0-old.raw', first);
  images.b = await image('b.raw', seededBytes(3, 1 * MiB));
  images.c = await image('c.raw', seededBytes(4, 1 * MiB));
  await withRepo(backend, async (repo) => {
    // VM a: disk0 of 32 blocks (its own pack), disk1 of 8 blocks (another pack, same segment).
    const a1 = await backup(repo, 'a', [images.a0, images.a1]);
    // Its second backup rewrites 12 of disk0's blocks: 20 of the first pack's 32 stay used.
    images.a0 = await image('a0.raw', Buffer.concat([seededBytes(2, 768 * KiB), first.subarray(768 * KiB)]));
    await backup(repo, 'a', [images.a0, images.a1]);
    const b = await backup(repo, 'b', [images.b]);
    await backup(repo, 'c', [images.c]);
    await deleteSnapshot(repo, a1.id);
    await deleteSnapshot(repo, b.id);
  });
});
after(() => work.remove());

async function copyOfTemplate(): Promise<string> {
  const root = join(work.path, `repo-${++copies}`);
  await cp(template, root, { recursive: true });
  return root;
}

async function packFiles(root: string): Promise<string[]> {
  return (await readdir(join(root, 'packs'), { recursive: true })).filter((name) => /[0-9a-f]{64}$/.test(name)).sort();
}

/** Chunks held by all packs, counted from their trailers (duplicates counted twice). */
async function chunksInPacks(repo: Repository): Promise<number> {
  let count = 0;
  for await (const entry of repo.backend.list('packs/')) count += (await readTrailer(repo, entry.key, entry.size)).chunks.length;
  return count;
}

/** Every remaining snapshot restores byte for byte and verify --read-data finds nothing. */
async function assertIntact(repo: Repository): Promise<void> {
  const snapshots = await listSnapshots(repo);
  assert.deepEqual(snapshots.map((s) => s.vm).sort(), ['a', 'c']);
  for (const snapshot of snapshots) {
    const sources = snapshot.vm === 'a' ? [images.a0, images.a1] : [images.c];
    for (const [disk, source] of sources.entries()) {
      const to = join(work.path, `out-${++copies}.raw`);
      await restoreSnapshot(repo, snapshot, { to, disk: String(disk) });
      assert.ok((await readFile(to)).equals(await readFile(source)), `${snapshot.vm} disk ${disk} restores byte for byte`);
    }
  }
  const verify = await verifyRepository(repo, { readData: true, now: () => new Date() });
  assert.deepEqual(verify.damaged, []);
  // Without --read-data: a chunk whose snapshot names a pack prune removed is found at its new place.
  assert.deepEqual((await verifyRepository(repo, { readData: false, now: () => new Date() })).damaged, []);
}

test('format 2 prune: a pack no snapshot uses is deleted, a pack 37 % unused is repacked, the rest kept; every snapshot restores', async () => {
  const root = await copyOfTemplate();
  const before = await packFiles(root);
  assert.equal(before.length, 5); // a: disk0, disk1; a again: disk0's 12 new blocks; b; c
  await withRepo(new LocalBackend(root), async (repo) => {
    const dry = await pruneRepository(repo, { dryRun: true });
    assert.deepEqual([dry.packs?.packsDeleted, dry.packs?.packsRepacked, dry.packs?.packsKept, dry.packs?.liveBytesInRepacked], [1, 1, 3, 20 * 64 * KiB]);
    assert.deepEqual(await packFiles(root), before, 'a dry run changes nothing');

    const report = await pruneRepository(repo);
    const packs = report.packs;
    assert.ok(packs !== undefined);
    assert.deepEqual(
      [packs.packsBefore, packs.packsDeleted, packs.packsRepacked, packs.packsKept, packs.packsWritten, packs.chunksCopied, packs.segmentsRewritten, packs.segmentsRemoved],
      [5, 1, 1, 3, 1, 20, 1, 1],
    );
    // Whole frames move as they are; only frames that lost blocks are sealed again. Which blocks
    // share a frame follows the order the pipeline delivered them in (it varies with the load):
    // the 32 blocks of the repacked pack are 4 frames, 12 dead blocks leave at least one mixed.
    const framesWithLive = packs.framesMoved + packs.framesRecompressed;
    assert.ok(packs.framesRecompressed >= 1 && framesWithLive >= 3 && framesWithLive <= 4, `${packs.framesMoved} moved, ${packs.framesRecompressed} recompressed`);
    assert.ok(report.bytesFreed > 1.3 * MiB && report.bytesFreed < 2 * MiB, `${report.bytesFreed} bytes freed`);
    assert.ok(packs.bytesRewritten > 20 * 64 * KiB && packs.bytesRewritten < 21 * 64 * KiB + 64 * KiB, `${packs.bytesRewritten} bytes rewritten`);
    assert.equal((await packFiles(root)).length, 4);
    // The dry run's figures are what prune did, within the estimate of the repack's new pack
    // (its stored size in the share of its bytes that are used); bytesKept is the packs left.
    assert.ok(Math.abs(dry.packs!.bytesRewritten - packs.bytesRewritten) < 64 * KiB, `dry run ${dry.packs?.bytesRewritten} rewritten, prune ${packs.bytesRewritten}`);
    assert.ok(Math.abs(dry.bytesFreed - report.bytesFreed) < 96 * KiB, `dry run ${dry.bytesFreed} freed, prune ${report.bytesFreed}`);
    let stored = 0;
    for await (const entry of repo.backend.list('packs/')) stored += entry.size;
    assert.equal(report.bytesKept, stored, 'bytesKept: the packs that stay');
    assert.ok(Math.abs(dry.bytesKept - stored) < 64 * KiB, `dry run ${dry.bytesKept} kept, ${stored} stored`);
    // 20 + 8 + 12 + 16 chunks used: each held exactly once.
    assert.equal(await chunksInPacks(repo), 56);
    await assertIntact(repo);

    const again = await pruneRepository(repo);
    assert.deepEqual([again.packs?.packsDeleted, again.packs?.packsRepacked, again.packs?.packsWritten, again.bytesFreed], [0, 0, 0, 0]);
  });
});

test('format 2 prune: a threshold above a pack\'s unused share keeps it; a threshold out of range is a usage error', async () => {
  const root = await copyOfTemplate();
  await withRepo(new LocalBackend(root), async (repo) => {
    await assert.rejects(pruneRepository(repo, { repackThreshold: 0 }), (e) => isCofferError(e, 'E_USAGE'));
    const report = await pruneRepository(repo, { repackThreshold: 0.5 });
    assert.deepEqual([report.packs?.packsDeleted, report.packs?.packsRepacked, report.packs?.packsKept], [1, 0, 4]);
    await assertIntact(repo);
  });
});

test('format 2 prune killed at each write or delete: every snapshot still restores, verify is clean, and a second prune finishes without duplicates', async () => {
  const faults: Omit<Fault, 'code'>[] = [
    { method: 'put', keyPrefix: 'packs/', nth: 1 }, // the new pack
    { method: 'put', keyPrefix: 'segments/', nth: 1 }, // the new pack's segment
    { method: 'put', keyPrefix: 'segments/', nth: 2 }, // VM a's first segment, without the repacked pack
    { method: 'sync', nth: 1 },
    { method: 'delete', keyPrefix: 'segments/', nth: 1 },
    { method: 'delete', keyPrefix: 'segments/', nth: 2 },
    { method: 'delete', keyPrefix: 'packs/', nth: 1 },
    { method: 'delete', keyPrefix: 'packs/', nth: 2 },
  ];
  for (const spec of faults) {
    const root = await copyOfTemplate();
    const fault: Fault = { ...spec, code: 'E_BACKEND_IO' };
    const faulty = new FaultyBackend(new LocalBackend(root), [fault]);
    await withRepo(faulty, async (repo) => {
      await assert.rejects(pruneRepository(repo), (e) => isCofferError(e, 'E_BACKEND_IO'), JSON.stringify(spec));
    });
    assert.deepEqual(faulty.unexercised(), [], JSON.stringify(spec));
    await withRepo(new LocalBackend(root), async (repo) => {
      await assertIntact(repo);
      const report = await pruneRepository(repo);
      assert.ok(report.packs !== undefined && report.packs.unreadable.length === 0, JSON.stringify(spec));
      assert.equal(await chunksInPacks(repo), 56, `after ${JSON.stringify(spec)}: every used chunk once`);
      assert.equal((await packFiles(root)).length, 4, JSON.stringify(spec));
      await assertIntact(repo);
    });
  }
});

test('format 2 prune: a backup that crashed before its manifest loses its packs, and its rerun stores them again; prune waits for a running backup', async () => {
  const root = await copyOfTemplate();
  const path = await image('d.raw', seededBytes(6, 1 * MiB));
  const faulty = new FaultyBackend(new LocalBackend(root), [{ method: 'put', keyPrefix: 'snapshots/', nth: 1, code: 'E_BACKEND_IO' }]);
  await withRepo(faulty, async (repo) => {
    await assert.rejects(backup(repo, 'd', [path]), (e) => isCofferError(e, 'E_BACKEND_IO'));
  });
  await withRepo(new LocalBackend(root), async (repo) => {
    const report = await pruneRepository(repo);
    assert.equal(report.packs?.packsDeleted, 2); // b's, and the crashed backup's
    // The rerun finds nothing of the crashed run in the index: it stores every block again.
    const [rerun, pruned] = await Promise.all([backup(repo, 'd', [path]), pruneRepository(repo, { pollMs: 20 })]);
    assert.equal(rerun.stats.bytesNew, 1 * MiB);
    assert.equal(pruned.packs?.packsDeleted, 0);
    const to = join(work.path, 'd-out.raw');
    await restoreSnapshot(repo, rerun, { to });
    assert.ok((await readFile(to)).equals(await readFile(path)));
    assert.deepEqual((await verifyRepository(repo, { readData: true, now: () => new Date() })).damaged, []);
  });
});
