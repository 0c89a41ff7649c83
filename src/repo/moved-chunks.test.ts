/**
 * Reads of a snapshot whose chunks a repacking prune moved (moved-chunks.ts,
 * docs/repository-format.md §19.7), on a real local format 2 repository whose backend counts
 * every ranged read: the snapshot's index pages still name the removed pack. A block-by-block
 * read makes exactly one request to the removed pack (before: one per frame), a restore no
 * more than the reads it had in flight when the first one failed, a sync from the repository
 * reads the moved chunks; every copy is byte for byte the backed-up disk.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { restoreSnapshot, SnapshotDisk } from '../restore/index.js';
import { makeTempDir, RangedReadLog, repackRepository, rewriteFrames, seededBytes } from '../testing/index.js';
import { LocalBackend } from './backend/local-backend.js';
import { initRepository, openRepository, type Repository } from './repository.js';
import { listSnapshots, type Snapshot } from './snapshots.js';
import { syncSnapshots } from './sync/sync-snapshots.js';

const KiB = 1024;
const BLOCK = 64 * KiB;
/** 64 blocks: 8 frames of 8 in one pack. */
const first = seededBytes(31, 64 * BLOCK);
/** Every fourth frame rewritten: 25 % of the first pack unused once the first snapshot is forgotten. */
const second = rewriteFrames(first, { frames: [0, 4], frameBytes: 8 * BLOCK, seed: 40 });

let work: { path: string; remove(): Promise<void> };
let root: string;
/** Packs the prune removed (keys). */
let removed: ReadonlySet<string>;
const opened: Repository[] = [];

async function open(): Promise<{ repo: Repository; backend: RangedReadLog }> {
  const backend = new RangedReadLog(new LocalBackend(root));
  const repo = await openRepository(backend, { passphrase: 'pw', threads: 2 });
  opened.push(repo);
  return { repo, backend };
}

async function kept(repo: Repository): Promise<Snapshot> {
  const [snapshot] = await listSnapshots(repo);
  assert.ok(snapshot !== undefined);
  return snapshot;
}

before(async () => {
  work = await makeTempDir('coffer-moved-chunks');
  root = join(work.path, 'repo');
  await initRepository(new LocalBackend(root), { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: BLOCK, format: 2 });
  const { repo } = await open();
  const repacked = await repackRepository(repo, { versions: [first, second], imageDir: work.path });
  assert.equal(repacked.report.packs?.packsRepacked, 1, 'the first pack, 25 % unused, is repacked');
  removed = new Set(repacked.removed.keys());
  assert.equal(removed.size, 1);
});
after(async () => {
  for (const repo of opened) await repo.close();
  await work?.remove();
});

test('a block-by-block read of a repacked snapshot makes one request to the removed pack (one per frame before) and reads every byte right', async () => {
  const { repo, backend } = await open();
  const snapshot = await kept(repo);
  const disk = snapshot.disks[0];
  assert.ok(disk !== undefined);
  const device = new SnapshotDisk(repo, snapshot.id, disk);
  const out = Buffer.alloc(disk.size);
  for (let offset = 0; offset < disk.size; offset += BLOCK) await device.read(offset, BLOCK, out.subarray(offset, offset + BLOCK));
  assert.ok(out.equals(second), 'byte for byte');
  assert.equal(backend.readsOf(removed).length, 1, 'only the first read tried the removed pack');
  assert.ok(backend.reads.length >= 6, `${backend.reads.length} ranged reads in all (6 frames moved, 2 in the second snapshot's own pack)`);
});

test('a restore of the repacked snapshot is byte for byte; it tries the removed pack only with the reads in flight when the first failed', async () => {
  const { repo, backend } = await open();
  const to = join(work.path, 'restored.raw');
  await restoreSnapshot(repo, await kept(repo), { to });
  assert.ok((await readFile(to)).equals(second), 'byte for byte');
  const failed = backend.readsOf(removed).length;
  // Restore by frames (restore-frames.ts): the spans in flight (threads + 1 = 3) may fail at
  // the removed pack; later reads wait for the segments, and the moved blocks are planned at
  // their new frames (restore-frames-moved.test.ts counts those reads).
  assert.ok(failed >= 1 && failed <= 3, `${failed} reads of the removed pack (the 3 spans in flight at most)`);
  // A second restore through the same open repository knows the pack is gone.
  const before = backend.reads.length;
  await restoreSnapshot(repo, await kept(repo), { to, overwrite: true });
  assert.ok((await readFile(to)).equals(second));
  assert.equal(backend.readsOf(removed).length, failed, 'no request to the removed pack the second time');
  assert.ok(backend.reads.length > before);
});

test('sync from a repository whose snapshot was repacked reads the moved chunks at their new places', async () => {
  const { repo } = await open();
  const dstRoot = join(work.path, 'copy');
  await initRepository(new LocalBackend(dstRoot), { passphrase: 'other', kdf: { N: 1024, r: 8, p: 1 }, blockSize: BLOCK, format: 1 });
  const dst = await openRepository(new LocalBackend(dstRoot), { passphrase: 'other', threads: 1 });
  opened.push(dst);
  const report = await syncSnapshots(repo, dst, { now: () => new Date('2026-11-26T00:00:00Z') });
  assert.deepEqual([report.copied, report.failed], [1, 0], JSON.stringify(report.snapshots));
  const to = join(work.path, 'synced.raw');
  await restoreSnapshot(dst, await kept(dst), { to });
  assert.ok((await readFile(to)).equals(second), 'byte for byte');
});
