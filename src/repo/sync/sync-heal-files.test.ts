/**
 * syncSnapshots heals the copies of FILE snapshots already in the destination
 * (heal-file-copies.ts), between real local repositories: into format 1 and into format 2, from
 * either format, with other keys and with the same keys. A content chunk deleted there is found
 * from one listing and sent again, a flipped byte in one with `readData`; a tree damaged or
 * deleted there is translated again from the source and stored again (format 2: every tree of
 * the snapshot shares one frame, so they are healed level by level). Afterwards verify finds
 * nothing and the files restore byte for byte. A chunk the source has lost too leaves that copy
 * failed while the other copy is healed. A whole destination costs its trees and one listing,
 * and reads nothing from the source.
 */
import assert from 'node:assert/strict';
import { cp, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { backupFiles } from '../../backup/index.js';
import { restoreFileSnapshot } from '../../restore/index.js';
import { closedAfter, flipByte, seededBytes, tempFolders } from '../../testing/index.js';
import {
  ChunksById,
  decodeLocatedEntry,
  initRepository,
  listSnapshots,
  LocalBackend,
  packKey,
  syncSnapshots,
  verifyRepository,
  walkFileTrees,
  type FormatVersion,
  type Repository,
  type Snapshot,
} from '../index.js';
import { openCounted, type CountedRepository } from './counting-repository.test-support.js';

const KiB = 1024;
const opened = closedAfter<Repository>();
const tempFolder = tempFolders();
const tempDir = (prefix: string): Promise<string> => tempFolder(`coffer-heal-files-${prefix}`);

/** Counts the requests for data objects (chunks, packs) and trees. */
type Opened = CountedRepository;
const open = (dir: string, passphrase: string): Promise<Opened> => openCounted(dir, passphrase, opened);

/**
 * The repository opened anew: verify and restore read format 2 trees through a reader kept per
 * open repository, whose decoded frames would hide damage done since (or a heal not done).
 */
async function fresh(opened: Opened): Promise<Repository> {
  return (await open(opened.dir, opened.passphrase)).repo;
}

/** A source of format `from` and a destination of format `to`: a new one with its own key, or (same format) a copy of the source's directory (the same key). */
async function pair(from: FormatVersion, to: FormatVersion, sameKeys: boolean): Promise<{ src: Opened; dst: Opened }> {
  const srcDir = await tempDir('src');
  await initRepository(new LocalBackend(srcDir), { passphrase: 'source', format: from, kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * KiB });
  const dstDir = await tempDir('dst');
  if (sameKeys) await cp(srcDir, dstDir, { recursive: true });
  else await initRepository(new LocalBackend(dstDir), { passphrase: 'destination', format: to, kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * KiB });
  return { src: await open(srcDir, 'source'), dst: await open(dstDir, sameKeys ? 'source' : 'destination') };
}

/** A tree of files three directories deep, `seed` making its bytes its own. */
async function makeTree(seed: number): Promise<string> {
  const root = await tempDir('tree');
  await mkdir(join(root, 'd1', 'd2'), { recursive: true });
  await writeFile(join(root, 'top.txt'), `a small file ${seed}\n`);
  await writeFile(join(root, 'd1', 'f1'), seededBytes(seed, 96 * KiB));
  await writeFile(join(root, 'd1', 'd2', 'f2'), seededBytes(seed + 1, 300 * KiB));
  await writeFile(join(root, 'd1', 'd2', 'f3'), `another small file ${seed}\n`);
  return root;
}

/** Every file below `dir`, relative path → bytes. */
async function filesBelow(dir: string, prefix = ''): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const entry of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const path = join(prefix, entry.name);
    if (entry.isDirectory()) for (const [p, b] of await filesBelow(dir, path)) files.set(p, b);
    else files.set(path, await readFile(join(dir, path)));
  }
  return files;
}

/** Restores the copy from the destination and compares its files with the tree it was taken from. */
async function assertRestores(dst: Repository, copy: Snapshot, tree: string): Promise<void> {
  const out = join(await tempDir('out'), 'restored');
  await restoreFileSnapshot(dst, copy, { to: out });
  assert.deepEqual(await filesBelow(join(out, tree)), await filesBelow(tree));
}

/** The chunks (hex ids, in order) of the file at `path` in `snapshot`, and the trees of the directories on the way, root first. */
async function where(repo: Repository, snapshot: Snapshot, path: string): Promise<{ chunks: string[]; trees: string[] }> {
  const chunks: string[] = [];
  await walkFileTrees(repo, [snapshot], { chunk: (c) => (c.path === path ? chunks.push(c.id) : undefined) }, (damage) => assert.fail(damage.error.message));
  const trees: string[] = [];
  await walkFileTrees(repo, [snapshot], { tree: (id) => trees.push(id) }, (damage) => assert.fail(damage.error.message));
  return { chunks, trees };
}

/** Format 1: the stored bytes of every tree. */
async function treeBytes(dir: string): Promise<number> {
  let bytes = 0;
  for (const fan of await readdir(join(dir, 'trees'))) for (const name of await readdir(join(dir, 'trees', fan))) bytes += (await stat(join(dir, 'trees', fan, name))).size;
  return bytes;
}

/** Distinct chunks the file snapshots name. */
async function distinctChunks(repo: Repository, snapshots: readonly Snapshot[]): Promise<number> {
  const seen = new Set<string>();
  await walkFileTrees(repo, snapshots, { chunk: (c) => seen.add(c.id) }, (damage) => assert.fail(damage.error.message), { distinct: true });
  return seen.size;
}

/**
 * The files holding chunk or tree `hex` of `repo`, and where in each its frame lies (format 1:
 * the whole object; format 2: each pack still there, after a heal several).
 */
async function storedAt(opened: Opened, hex: string, kind: 'chunks' | 'trees'): Promise<{ file: string; middle: number }[]> {
  if (opened.repo.config.version === 1) {
    const file = join(opened.dir, kind, hex.slice(0, 2), hex);
    return [{ file, middle: (await stat(file)).size >> 1 }];
  }
  const places: { file: string; middle: number }[] = [];
  for (const entry of await new ChunksById(opened.repo).locations(Buffer.from(hex, 'hex'))) {
    const place = decodeLocatedEntry(entry, hex);
    const file = join(opened.dir, packKey(place.pack.toString('hex')));
    if (await stat(file).catch(() => null)) places.push({ file, middle: place.frameOffset + (place.frameLength >> 1) });
  }
  assert.ok(places.length > 0, `${hex} is stored nowhere in ${opened.dir}`);
  return places;
}

/** The one place of `hex` (a chunk or tree never healed). */
async function onlyPlace(opened: Opened, hex: string, kind: 'chunks' | 'trees'): Promise<{ file: string; middle: number }> {
  const places = await storedAt(opened, hex, kind);
  assert.equal(places.length, 1);
  return places[0] as { file: string; middle: number };
}

const now = () => new Date('2026-11-30T00:00:00Z');

const cases: { from: FormatVersion; to: FormatVersion; sameKeys: boolean }[] = [
  { from: 2, to: 1, sameKeys: false },
  { from: 1, to: 2, sameKeys: false },
  { from: 1, to: 1, sameKeys: true },
  { from: 2, to: 2, sameKeys: true },
];

for (const { from, to, sameKeys } of cases) {
  test(`file snapshots, format ${from} → format ${to}, ${sameKeys ? 'the same keys' : 'other keys'}: a chunk or a tree missing or damaged in the copy is sent again from the source`, async () => {
    const { src, dst } = await pair(from, to, sameKeys);
    const treeA = await makeTree(10);
    const treeB = await makeTree(20);
    const a = await backupFiles(src.repo, { host: 'guest', paths: [treeA] });
    await backupFiles(src.repo, { host: 'other', paths: [treeB] });
    assert.equal((await syncSnapshots(src.repo, dst.repo, { now })).copied, 2);
    const copies = await listSnapshots(dst.repo);
    const copyA = copies.find((s) => s.vm === 'guest') as Snapshot;
    const copyB = copies.find((s) => s.vm === 'other') as Snapshot;
    const f2 = `${treeA}/d1/d2/f2`;
    const inCopyA = await where(dst.repo, copyA, f2);
    const statusOf = (report: Awaited<ReturnType<typeof syncSnapshots>>, copy: Snapshot) => report.snapshots.find((s) => s.destination === copy.id);

    // Whole: the copies' trees and one listing; nothing is read from the source.
    src.counting.dataReads = 0;
    const whole = await syncSnapshots(src.repo, dst.repo, { now, check: true });
    assert.deepEqual([whole.present, whole.healed, whole.failed, whole.chunksHealed, whole.treesHealed, whole.chunksSent], [2, 0, 0, 0, 0, 0]);
    assert.equal(whole.chunksChecked, await distinctChunks(dst.repo, copies), 'every chunk the file copies name is checked');
    assert.deepEqual([whole.bytesRead, src.counting.dataReads], [0, 0], 'nothing read from the source');
    if (to === 1) assert.equal(whole.bytesReadFromDestination, await treeBytes(dst.dir), 'the copies\' trees, each once');
    else assert.ok(whole.bytesReadFromDestination > 0, 'the copies\' trees');

    // (a) A content chunk deleted (format 2: its pack): the listing finds it gone, the sync sends it again.
    const chunk = await onlyPlace(dst, inCopyA.chunks[0] as string, 'chunks');
    await rm(chunk.file);
    assert.notDeepEqual((await verifyRepository(await fresh(dst), { readData: false, now })).damaged, []);
    const healed = await syncSnapshots(src.repo, dst.repo, { now, check: true });
    assert.deepEqual([healed.failed, healed.copied, statusOf(healed, copyA)?.status], [0, 0, 'healed']);
    assert.ok(healed.chunksHealed >= 1 && (statusOf(healed, copyA)?.chunksHealed ?? 0) >= 1, JSON.stringify(healed.snapshots));
    assert.ok(healed.chunksRead <= healed.chunksHealed, 'only the missing chunks were read from the source');
    assert.deepEqual((await verifyRepository(await fresh(dst), { readData: true, now })).damaged, []);
    await assertRestores(await fresh(dst), copyA, treeA);
    const after = await syncSnapshots(src.repo, dst.repo, { now, check: true });
    assert.deepEqual([after.present, after.chunksHealed, after.chunksSent], [2, 0, 0], 'healed once: the next sync finds it whole');

    // A flipped byte in a content chunk: a listing does not see it; readData does.
    const rotten = await onlyPlace(dst, inCopyA.chunks.at(-1) as string, 'chunks'); // format 2: the pack healed above (the first is gone)
    await flipByte(rotten.file, rotten.middle);
    assert.equal((await syncSnapshots(src.repo, dst.repo, { now, check: true })).chunksHealed, 0);
    const read = await syncSnapshots(src.repo, dst.repo, { now, readData: true });
    assert.deepEqual([read.failed, statusOf(read, copyA)?.status], [0, 'healed']);
    assert.ok(read.chunksHealed >= 1);
    assert.deepEqual((await verifyRepository(await fresh(dst), { readData: true, now })).damaged, []);
    await assertRestores(await fresh(dst), copyA, treeA);

    // (b) A tree damaged: the trees are read by every check, so --check finds it; it is
    // translated again from the source's tree and stored again.
    const d1 = inCopyA.trees.at(-2) as string; // the trees visited: the path's directories, d1, d2
    const tree = await onlyPlace(dst, d1, 'trees');
    await flipByte(tree.file, tree.middle);
    assert.ok((await verifyRepository(await fresh(dst), { readData: false, now })).damaged.some((d) => d.kind === 'file tree'));
    const mended = await syncSnapshots(src.repo, dst.repo, { now, check: true });
    assert.deepEqual([mended.failed, statusOf(mended, copyA)?.status, statusOf(mended, copyB)?.status], [0, 'healed', 'present'], JSON.stringify(mended.snapshots));
    assert.ok(mended.treesHealed >= 1 && (statusOf(mended, copyA)?.treesHealed ?? 0) >= 1, JSON.stringify(mended.snapshots));
    assert.deepEqual((await verifyRepository(await fresh(dst), { readData: true, now })).damaged, []);
    await assertRestores(await fresh(dst), copyA, treeA);
    assert.deepEqual((await syncSnapshots(src.repo, dst.repo, { now, readData: true })).treesHealed, 0);

    // A root tree deleted (format 2: the pack of the copy's trees).
    const root = await onlyPlace(dst, copyB.files?.tree as string, 'trees');
    await rm(root.file);
    const regrown = await syncSnapshots(src.repo, dst.repo, { now, check: true });
    assert.deepEqual([regrown.failed, statusOf(regrown, copyB)?.status], [0, 'healed'], JSON.stringify(regrown.snapshots));
    assert.deepEqual((await verifyRepository(await fresh(dst), { readData: true, now })).damaged, []);
    await assertRestores(await fresh(dst), copyB, treeB);

    // The source has lost the chunk too: that copy stays broken (the source's error), the other is healed.
    // (In the destination every place of the chunk goes: after the heals above, a flip could undo an earlier one.)
    const lostInSource = (await where(src.repo, a, f2)).chunks[0] as string;
    const inSource = await onlyPlace(src, lostInSource, 'chunks');
    await flipByte(inSource.file, inSource.middle);
    for (const place of await storedAt(dst, inCopyA.chunks[0] as string, 'chunks')) await rm(place.file);
    const inB = await onlyPlace(dst, (await where(dst.repo, copyB, `${treeB}/d1/f1`)).chunks[0] as string, 'chunks');
    await flipByte(inB.file, inB.middle);
    const partly = await syncSnapshots(src.repo, dst.repo, { now, readData: true });
    assert.deepEqual([partly.failed, statusOf(partly, copyA)?.status, statusOf(partly, copyB)?.status], [1, 'failed', 'healed'], JSON.stringify(partly.snapshots));
    assert.equal(statusOf(partly, copyA)?.error?.code, 'E_CORRUPT_OBJECT');
    await assertRestores(await fresh(dst), copyB, treeB);
    const stillBroken = await verifyRepository(await fresh(dst), { readData: true, now });
    assert.deepEqual([...new Set(stillBroken.affected.map((hit) => hit.snapshot))], [copyA.id]);
  });
}
