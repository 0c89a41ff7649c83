/**
 * Prune's merge of small index segments (segment-merge.ts, docs/repository-format.md §19.4,
 * §19.7) on real local format 2 repositories: ten backups (ten segments) copied per test. The
 * merge leaves one segment, every snapshot restores byte for byte and a backup of known data
 * still stores nothing new; a prune whose first segment delete fails leaves a readable
 * repository and the next prune finishes; a chunk at two places keeps both.
 */
import assert from 'node:assert/strict';
import { cp, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { backupVm } from '../backup/index.js';
import { isCofferError } from '../errors/index.js';
import { restoreSnapshot } from '../restore/index.js';
import { openImageSource } from '../source/index.js';
import { makeTempDir, seededBytes, withRepo } from '../testing/index.js';
import { FaultyBackend } from './backend/faulty-backend.js';
import { LocalBackend } from './backend/local-backend.js';
import { ChunkIndex } from './chunk-index.js';
import { ObjectKind } from './format/envelope.js';
import { encodeSegment } from './format/index-segment.js';
import { encodeLocatedEntry } from './format/located-entry.js';
import { segmentKey } from './layout.js';
import { pruneRepository } from './prune.js';
import { initRepository, type Repository } from './repository.js';
import { mergeSmallSegments } from './segment-merge.js';
import { listSnapshots, type Snapshot } from './snapshots.js';

const KiB = 1024;
const VMS = 10;
let work: { path: string; remove(): Promise<void> };
let template: string;
let copies = 0;
/** VM name → the bytes of its disk. */
const disks = new Map<string, Buffer>();

async function backup(repo: Repository, vm: string, bytes: Buffer): Promise<Snapshot> {
  const path = join(work.path, `${vm}-${++copies}.raw`);
  await writeFile(path, bytes);
  const source = await openImageSource(vm, [path]);
  try {
    return await backupVm(repo, source);
  } finally {
    await source.close();
  }
}

async function segmentFiles(root: string): Promise<string[]> {
  return (await readdir(join(root, 'segments'))).filter((name) => /^[0-9a-f]{64}$/.test(name)).sort();
}

async function copyOfTemplate(): Promise<string> {
  const root = join(work.path, `repo-${++copies}`);
  await cp(template, root, { recursive: true });
  return root;
}

/** Every snapshot restores byte for byte. */
async function assertRestores(repo: Repository): Promise<void> {
  const snapshots = await listSnapshots(repo);
  assert.equal(snapshots.length, VMS);
  for (const snapshot of snapshots) {
    const to = join(work.path, `out-${++copies}.raw`);
    await restoreSnapshot(repo, snapshot, { to });
    assert.ok((await readFile(to)).equals(disks.get(snapshot.vm) as Buffer), `${snapshot.vm} restores byte for byte`);
  }
}

before(async () => {
  work = await makeTempDir('coffer-segment-merge');
  template = join(work.path, 'template');
  await initRepository(new LocalBackend(template), { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * KiB, format: 2 });
  await withRepo(new LocalBackend(template), async (repo) => {
    for (let vm = 0; vm < VMS; vm++) {
      const bytes = seededBytes(60 + vm, 256 * KiB);
      disks.set(`vm${vm}`, bytes);
      await backup(repo, `vm${vm}`, bytes);
    }
  });
  assert.equal((await segmentFiles(template)).length, VMS, 'one segment per backup');
});
after(() => work.remove());

test('prune merges the small segments into one: every snapshot restores, and backups still find every chunk', async () => {
  const root = await copyOfTemplate();
  await withRepo(new LocalBackend(root), async (repo) => {
    const dry = await pruneRepository(repo, { dryRun: true });
    assert.deepEqual(dry.segments, { segmentsBefore: VMS, segmentsMerged: VMS, segmentsWritten: 0, stillLocked: 0 });
    assert.equal((await segmentFiles(root)).length, VMS, 'a dry run writes nothing');
    const report = await pruneRepository(repo);
    assert.deepEqual(report.segments, { segmentsBefore: VMS, segmentsMerged: VMS, segmentsWritten: 1, stillLocked: 0 });
    assert.equal((await segmentFiles(root)).length, 1);
    assert.equal((await ChunkIndex.load(repo)).size, VMS * 4, 'the merged segment names every chunk once');
    await assertRestores(repo);
    const again = await backup(repo, 'vm3-clone', disks.get('vm3') as Buffer);
    assert.equal(again.stats.bytesNew, 0, 'deduplicated through the merged segment');
    // Fewer small segments than the threshold: left as they are.
    assert.equal((await pruneRepository(repo)).segments?.segmentsMerged, 0);
  });
});

test('a prune that fails deleting the merged-away segments leaves every snapshot readable; the next prune finishes without duplicates', async () => {
  const root = await copyOfTemplate();
  const faulty = new FaultyBackend(new LocalBackend(root), [{ method: 'delete', keyPrefix: 'segments/', nth: 3, code: 'E_BACKEND_IO' }]);
  await withRepo(faulty, async (repo) => {
    await assert.rejects(pruneRepository(repo), (error) => isCofferError(error, 'E_BACKEND_IO'));
  });
  assert.deepEqual(faulty.unexercised(), []);
  assert.equal((await segmentFiles(root)).length, VMS - 2 + 1, 'two small ones deleted, the merged one written');
  await withRepo(new LocalBackend(root), async (repo) => {
    await assertRestores(repo);
    const report = await pruneRepository(repo);
    assert.equal(report.segments?.segmentsWritten, 1);
    assert.equal((await segmentFiles(root)).length, 1);
    assert.equal((await ChunkIndex.load(repo)).size, VMS * 4, 'identical entries once');
    await assertRestores(repo);
  });
});

test('a chunk named at two places by two small segments keeps both after the merge (ids are unique within a segment)', async () => {
  const root = join(work.path, `synthetic-${++copies}`);
  await initRepository(new LocalBackend(root), { passphrase: null, format: 2 });
  await withRepo(new LocalBackend(root), async (repo) => {
    const id = Buffer.alloc(32, 7);
    const at = (pack: number, frameOffset: number, chunk = id) => encodeLocatedEntry({ id: chunk, pack: Buffer.alloc(32, pack), frameOffset, frameLength: 100, chunkOffset: 0, chunkLength: 10 });
    const other = Buffer.alloc(32, 9);
    // The same place twice (a crash between a merge and its deletes), and another place.
    for (const entries of [[at(1, 0)], [at(2, 64)], [at(1, 0), at(1, 0, other)]]) {
      const plaintext = encodeSegment(entries);
      const segmentId = repo.codec.idOf(plaintext);
      await repo.backend.put(segmentKey(segmentId.toString('hex')), await repo.pool.seal(plaintext, ObjectKind.indexSegment, segmentId));
    }
    const report = await mergeSmallSegments(repo, { minSegments: 2 });
    assert.equal(report.segmentsBefore, 3);
    assert.equal(report.segmentsWritten, 2, 'the second place in a second segment');
    const places = await (await ChunkIndex.load(repo)).lookupAll(id);
    assert.deepEqual(places.map((p) => p.toString('hex')).sort(), [at(1, 0), at(2, 64)].map((p) => p.toString('hex')).sort(), 'each place once');
    assert.equal((await ChunkIndex.load(repo)).size, 3);
  });
});

test('the shared chunk index is loaded once while the segments stay the same, and anew once a merge or a backup changes them', async () => {
  const root = await copyOfTemplate();
  await withRepo(new LocalBackend(root), async (repo) => {
    const first = await ChunkIndex.current(repo);
    assert.equal(await ChunkIndex.current(repo), first, 'the same segments: the same index');
    assert.equal(first.size, VMS * 4);
    await pruneRepository(repo);
    const merged = await ChunkIndex.current(repo);
    assert.notEqual(merged, first, 'merged segments: loaded anew');
    assert.equal(merged.size, VMS * 4);
    assert.ok((await merged.lookup(repo.codec.idOf((disks.get('vm0') as Buffer).subarray(0, 64 * KiB)))) !== undefined, 'a block of vm0 is found through the merged segment');
    await backup(repo, 'new-vm', seededBytes(99, 256 * KiB));
    const grown = await ChunkIndex.current(repo);
    assert.notEqual(grown, merged, 'a new segment: loaded anew');
    assert.equal(grown.size, VMS * 4 + 4);
  });
});
