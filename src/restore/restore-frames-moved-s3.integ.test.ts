/**
 * Restore from S3 of a snapshot a repacking prune moved (restore-frames.ts, moved-chunks.ts,
 * docs/repository-format.md §19.7), against a real Ceph RADOS Gateway: the moved blocks come
 * back byte for byte from the packs the prune wrote, by spans of frames several to a GET (the
 * block path made one GET per frame, after one failed GET per frame of the removed packs), no
 * byte read twice; the removed packs are asked only by the GETs in flight when the first came
 * back 404, and not at all by a restore once the repository knows.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { initRepository, listSnapshots, openRepository, type Repository } from '../repo/index.js';
import { assertEachByteOnce, cephRepositories, RangedReadLog, repackRepository, rewriteFrames, seededBytes, tempFolders } from '../testing/index.js';
import { restoreSnapshot } from './index.js';
import { remoteReads } from './restore-frames.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 64 * KiB;
const BLOCKS_PER_FRAME = 8;
/** 16 MiB of incompressible data (32 frames); every third frame rewritten by the second backup. */
const BLOCKS = 256;
const first = seededBytes(71, BLOCKS * BLOCK);
const second = rewriteFrames(first, { frames: Array.from({ length: Math.ceil(BLOCKS / BLOCKS_PER_FRAME / 3) }, (_, i) => 3 * i), frameBytes: BLOCKS_PER_FRAME * BLOCK, seed: 500 });

const tempFolder = tempFolders();
const s3Repository = cephRepositories();

test('a repacked snapshot restores from S3 by spans of the new packs: byte for byte, each byte once, the removed packs only by the GETs in flight at the first 404', async (t) => {
  const backend = await s3Repository('rf-moved');
  await initRepository(backend, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: BLOCK, format: 2 });
  const writer = await openRepository(backend, { passphrase: 'pw', threads: 2 });
  let removed: ReadonlySet<string>;
  let written: ReadonlyMap<string, number>;
  try {
    const repacked = await repackRepository(writer, { versions: [first, second], imageDir: await tempFolder('coffer-rfm3-img') });
    assert.ok((repacked.report.packs?.packsRepacked ?? 0) >= 2, JSON.stringify(repacked.report.packs));
    removed = new Set(repacked.removed.keys());
    written = repacked.written;
  } finally {
    await writer.close();
  }

  const counted = new RangedReadLog(backend);
  const reads = counted.reads;
  const repo: Repository = await openRepository(counted, { passphrase: 'pw', threads: 2 });
  try {
    const [snapshot] = await listSnapshots(repo);
    assert.ok(snapshot !== undefined);
    const to = join(await tempFolder('coffer-rfm3-out'), 'restored.raw');
    await restoreSnapshot(repo, snapshot, { to });
    assert.ok((await readFile(to)).equals(second), 'byte for byte');
    const ofRemoved = reads.filter((r) => removed.has(r.key));
    const ofWritten = reads.filter((r) => written.has(r.key));
    t.diagnostic(`first restore: ${reads.length} ranged GETs, ${ofRemoved.length} of removed packs, ${ofWritten.length} of the ${written.size} packs the prune wrote`);
    assert.ok(ofRemoved.every((r) => r.failed) && reads.every((r) => !r.failed || removed.has(r.key)), 'only the removed packs fail');
    const inFlight = remoteReads(backend.preferredConcurrency).inFlight;
    assert.ok(ofRemoved.length >= 1 && ofRemoved.length <= inFlight, `${ofRemoved.length} GETs of removed packs (at most the ${inFlight} in flight)`);
    assertEachByteOnce(ofWritten);
    // 22 frames moved: the block path made a GET per frame. By spans: about 1.5 MiB or more a GET.
    const most = [...written.values()].reduce((sum, size) => sum + Math.ceil(size / (1.5 * MiB)), 0);
    assert.ok(ofWritten.length <= most, `${ofWritten.length} GETs of the packs the prune wrote (at most ${most})`);

    const earlier = reads.length;
    await restoreSnapshot(repo, snapshot, { to, overwrite: true });
    assert.ok((await readFile(to)).equals(second), 'byte for byte');
    const again = reads.slice(earlier);
    t.diagnostic(`second restore: ${again.length} ranged GETs`);
    assert.equal(again.filter((r) => removed.has(r.key) || r.failed).length, 0, 'no GET of a removed pack, none failed');
    assertEachByteOnce(again.filter((r) => written.has(r.key)));
  } finally {
    await repo.close();
  }
});
