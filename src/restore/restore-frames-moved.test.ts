/**
 * Restore by frames of a snapshot whose chunks a repacking prune moved (restore-frames.ts,
 * moved-chunks.ts, docs/repository-format.md §19.7), on a real local format 2 repository whose
 * backend records every ranged read: the snapshot's index pages still name the removed packs.
 * The moved blocks are read by frames from the packs the prune wrote, like any other: each
 * byte of those packs read at most once, in spans (fewer reads than frames), the removed
 * packs asked only by the reads in flight when the first found one missing (never once the
 * repository knows), and the disk restored byte for byte. A chunk found nowhere still fails
 * naming the snapshot, disk, chunk and bytes.
 */
import assert from 'node:assert/strict';
import { cp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { isCofferError } from '../errors/index.js';
import { initRepository, listSnapshots, LocalBackend, openRepository, verifyRepository, type Repository, type Snapshot } from '../repo/index.js';
import { assertEachByteOnce, RangedReadLog, repackRepository, rewriteFrames, seededBytes, tempFolders } from '../testing/index.js';
import { restoreSnapshot, SnapshotDisk } from './index.js';
import { READ_AHEAD } from './snapshot-disk.js';

const tempFolder = tempFolders();
const KiB = 1024;
const BLOCK = 64 * KiB;
/** Blocks of a frame (PACK_DEFAULTS.blocksPerFrame) and frames of a span (frame-spans.ts). */
const BLOCKS_PER_FRAME = 8;
const FRAMES_PER_SPAN = 4;
/** 16 MiB of incompressible data: 256 blocks, 32 frames, two to three packs. */
const BLOCKS = 256;
const first = seededBytes(71, BLOCKS * BLOCK);
/** Every third frame rewritten: a third of the first backup's packs unused once it is forgotten. */
const rewrittenFrames = Array.from({ length: Math.ceil(BLOCKS / BLOCKS_PER_FRAME / 3) }, (_, i) => 3 * i);
const second = rewriteFrames(first, { frames: rewrittenFrames, frameBytes: BLOCKS_PER_FRAME * BLOCK, seed: 500 });
/** Frames of the second backup that still hold the first backup's chunks, which the prune moves. */
const movedFrames = BLOCKS / BLOCKS_PER_FRAME - rewrittenFrames.length;

/** The local backend, recording every ranged read made through it. */
function recording(root: string): { backend: RangedReadLog; reads: RangedReadLog['reads'] } {
  const backend = new RangedReadLog(new LocalBackend(root));
  return { backend, reads: backend.reads };
}

let root: string;
/** Packs the prune removed, and the packs it wrote (keys). */
let removed: ReadonlySet<string>;
let written: ReadonlySet<string>;

before(async () => {
  root = join(await tempFolder('coffer-rfm-repo'), 'repo');
  await initRepository(new LocalBackend(root), { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: BLOCK, format: 2 });
  const repo = await openRepository(new LocalBackend(root), { passphrase: 'pw', threads: 2 });
  try {
    const repacked = await repackRepository(repo, { versions: [first, second], imageDir: await tempFolder('coffer-rfm-img') });
    assert.ok((repacked.report.packs?.packsRepacked ?? 0) >= 2, `the first backup's packs, a third unused, are repacked (${JSON.stringify(repacked.report.packs)})`);
    removed = new Set(repacked.removed.keys());
    written = new Set(repacked.written.keys());
  } finally {
    await repo.close();
  }
  assert.ok(removed.size >= 2 && written.size >= 1);
});

async function kept(repo: Repository): Promise<Snapshot> {
  const [snapshot] = await listSnapshots(repo);
  assert.ok(snapshot !== undefined);
  return snapshot;
}

test('the first restore after a repacking prune reads the moved blocks by frames from the new packs, each byte once, in spans; the removed packs only by the reads in flight', async () => {
  const { backend, reads } = recording(root);
  const repo = await openRepository(backend, { passphrase: 'pw', threads: 2 });
  try {
    const to = join(await tempFolder('coffer-rfm-out'), 'restored.raw');
    await restoreSnapshot(repo, await kept(repo), { to });
    assert.ok((await readFile(to)).equals(second), 'byte for byte');
    const ofRemoved = reads.filter((r) => removed.has(r.key));
    // Reads start threads + 1 = 3 at once; the first that finds a pack missing stops the rest.
    assert.ok(ofRemoved.length >= 1 && ofRemoved.length <= 3, `${ofRemoved.length} reads of removed packs (3 at most: those in flight)`);
    assert.ok(ofRemoved.every((r) => r.failed));
    const ofWritten = reads.filter((r) => written.has(r.key));
    assertEachByteOnce(ofWritten);
    // Block by block (before), each moved frame was one read: 22 here. By spans of 4 frames
    // (and a span cut where a pack ends): at most ceil(22 / 4) + one per pack written.
    const most = Math.ceil(movedFrames / FRAMES_PER_SPAN) + written.size;
    assert.ok(ofWritten.length <= most, `${ofWritten.length} reads of the packs the prune wrote (${movedFrames} frames moved: ${most} at most)`);
    assert.equal(reads.filter((r) => r.failed).length, ofRemoved.length, 'no other read failed');

    // Through the same open repository a second restore knows where the chunks are.
    const before = reads.length;
    await restoreSnapshot(repo, await kept(repo), { to, overwrite: true });
    assert.ok((await readFile(to)).equals(second), 'byte for byte');
    const again = reads.slice(before);
    assert.equal(again.filter((r) => removed.has(r.key)).length, 0, 'no request to a removed pack');
    assert.equal(again.filter((r) => r.failed).length, 0);
    assertEachByteOnce(again.filter((r) => written.has(r.key)));
    assert.ok(again.filter((r) => written.has(r.key)).length <= most);
  } finally {
    await repo.close();
  }
});

test('a sequential reader with read-ahead (coffer serve) prefetches the moved blocks from their new frames: the removed packs only by the prefetches in flight when the first failed', async () => {
  const { backend, reads } = recording(root);
  const repo = await openRepository(backend, { passphrase: 'pw', threads: 2 });
  try {
    const snapshot = await kept(repo);
    const record = snapshot.disks[0];
    assert.ok(record !== undefined);
    const disk = new SnapshotDisk(repo, snapshot.id, record, { readAhead: true });
    const out = Buffer.alloc(record.size);
    for (let offset = 0; offset < record.size; offset += BLOCK) await disk.read(offset, BLOCK, out.subarray(offset, offset + BLOCK));
    assert.ok(out.equals(second), 'byte for byte');
    const ofRemoved = reads.filter((r) => removed.has(r.key)).length;
    // Before: every prefetch of a moved frame asked its removed pack (22 here).
    assert.ok(ofRemoved >= 1 && ofRemoved <= 1 + READ_AHEAD.frames, `${ofRemoved} reads of removed packs (${1 + READ_AHEAD.frames} at most)`);
    assert.ok(disk.frameCache.readAhead > 0, 'frames were read ahead');
  } finally {
    await repo.close();
  }
});

test('verify --read-data of the repacked repository reads the moved chunks by frames at their new places: each byte once, no removed pack asked, nothing damaged', async () => {
  const { backend, reads } = recording(root);
  const repo = await openRepository(backend, { passphrase: 'pw', threads: 2 });
  try {
    const report = await verifyRepository(repo, { readData: true, now: () => new Date() });
    assert.deepEqual(report.damaged, []);
    assert.equal(reads.filter((r) => removed.has(r.key) || r.failed).length, 0, 'no read of a removed pack, none failed');
    // Before: a failed read per span of the removed packs, then one read per moved chunk (8 a frame).
    assertEachByteOnce(reads);
  } finally {
    await repo.close();
  }
});

test('a moved chunk found nowhere (the pack the prune wrote is lost too) fails naming the snapshot, disk, chunk and bytes', async () => {
  const copy = join(await tempFolder('coffer-rfm-damaged'), 'repo');
  await cp(root, copy, { recursive: true });
  const [lost] = [...written];
  assert.ok(lost !== undefined);
  await rm(join(copy, lost));
  const repo = await openRepository(new LocalBackend(copy), { passphrase: 'pw', threads: 2 });
  try {
    const snapshot = await kept(repo);
    const to = join(await tempFolder('coffer-rfm-out2'), 'restored.raw');
    await assert.rejects(restoreSnapshot(repo, snapshot, { to }), (error) => {
      assert.ok(isCofferError(error, 'E_MISSING_OBJECT'), String(error));
      assert.match(error.message, new RegExp(`snapshot ${snapshot.id.slice(0, 8)} disk \\S+: chunk [0-9a-f]{64} for bytes \\d+-\\d+ is missing`));
      return true;
    });
  } finally {
    await repo.close();
  }
});
