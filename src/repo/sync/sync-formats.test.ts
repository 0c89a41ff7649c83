/**
 * syncSnapshots between repositories of both formats, on real local repositories: format 1 →
 * format 2 (the migration path: several snapshots, two VMs sharing blocks, a file snapshot),
 * format 2 → format 2 with the same keys (whole packs copied as stored), format 2 → format 1,
 * an interrupted migration resumed, and an interrupted sync of a file snapshot between format
 * 2 repositories resumed. Every copy is read back byte for byte and the destination verified
 * with all its data. (File snapshots of the real test tree, with their metadata, through the
 * binary: src/cli/file-sync-format2.integ.test.ts.)
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { backupFiles } from '../../backup/index.js';
import { isCofferError } from '../../errors/index.js';
import { backupBytes, makeTempDir, seededBytes, snapshotDiskBytes } from '../../testing/index.js';
import { openCounted } from './counting-repository.test-support.js';
import {
  ChunksById,
  initRepository,
  listSnapshots,
  LocalBackend,
  ObjectKind,
  openRepository,
  PACKS_PREFIX,
  syncSnapshots,
  verifyRepository,
  walkFileTrees,
  type Repository,
  type Snapshot,
} from '../index.js';

const KiB = 1024;
const now = () => new Date('2026-11-26T00:00:00Z');
let work: { path: string; remove(): Promise<void> };
let made = 0;
const repos: Repository[] = [];
before(async () => {
  work = await makeTempDir('coffer-sync-formats');
});
after(async () => {
  for (const repo of repos) await repo.close();
  await work?.remove();
});

/** A new repository of `format` (64 KiB blocks; unencrypted for a null passphrase). */
async function newRepo(format: 1 | 2, passphrase: string | null): Promise<Repository> {
  const local = new LocalBackend(join(work.path, `repo${made++}`));
  await initRepository(local, { passphrase, format, kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * KiB });
  const repo = await openRepository(local, { passphrase: passphrase ?? undefined, threads: 1 });
  repos.push(repo);
  return repo;
}

function backup(repo: Repository, vm: string, bytes: Buffer, time: string): Promise<Snapshot> {
  return backupBytes(repo, vm, bytes, time, work.path);
}

const diskBytes = (repo: Repository, snapshot: Snapshot): Promise<Buffer> => snapshotDiskBytes(repo, snapshot);

/** Every disk snapshot of the source has a copy (same VM and time) holding the same bytes. */
async function assertSameDisks(src: Repository, dst: Repository, expected: number): Promise<void> {
  const originals = (await listSnapshots(src)).filter((s) => s.files === undefined);
  assert.equal(originals.length, expected);
  const copies = await listSnapshots(dst);
  for (const original of originals) {
    const copy = copies.find((s) => s.vm === original.vm && s.time === original.time);
    assert.ok(copy !== undefined, `${original.vm} ${original.time} has a copy`);
    assert.ok((await diskBytes(dst, copy)).equals(await diskBytes(src, original)), `${copy.vm} ${copy.time} byte for byte`);
  }
  assert.deepEqual((await verifyRepository(dst, { readData: true, now })).damaged, []);
}

async function packKeys(repo: Repository): Promise<string[]> {
  const keys: string[] = [];
  for await (const entry of repo.backend.list(PACKS_PREFIX)) keys.push(entry.key);
  return keys.sort();
}

const base = Buffer.concat([seededBytes(11, 640 * KiB), Buffer.alloc(128 * KiB), seededBytes(12, 256 * KiB)]);
const changed = Buffer.concat([base.subarray(0, 64 * KiB), seededBytes(13, 64 * KiB), base.subarray(128 * KiB)]);
const clone = Buffer.concat([base.subarray(0, 512 * KiB), seededBytes(14, 512 * KiB)]);

/** The files of a file snapshot (path → bytes), read chunk by chunk from either format. */
async function fileBytes(repo: Repository, snapshot: Snapshot): Promise<Map<string, Buffer>> {
  const pieces = new Map<string, { offset: number; id: string }[]>();
  await walkFileTrees(repo, [snapshot], { chunk: (c) => pieces.set(c.path, [...(pieces.get(c.path) ?? []), { offset: c.offset, id: c.id }]) }, (damage) => assert.fail(damage.error.message));
  const byId = repo.config.version === 2 ? new ChunksById(repo) : undefined;
  const files = new Map<string, Buffer>();
  for (const [path, chunks] of pieces) {
    const parts: Buffer[] = [];
    for (const { id } of chunks.sort((a, b) => a.offset - b.offset)) {
      const raw = Buffer.from(id, 'hex');
      parts.push(byId !== undefined ? await byId.read(raw) : repo.codec.open(await repo.getChunkBlob(raw), ObjectKind.chunk, 'chunk', raw));
    }
    files.set(path, Buffer.concat(parts));
  }
  return files;
}

test('format 1 → format 2 (migration, other keys): every disk snapshot restores byte for byte and verifies, the file snapshot too, a second sync copies nothing, and backups dedup against what arrived', async () => {
  const src = await newRepo(1, 'old');
  const dst = await newRepo(2, 'new');
  await backup(src, 'web', base, '2026-11-20T00:00:00Z');
  await backup(src, 'web', changed, '2026-11-21T00:00:00Z');
  await backup(src, 'db', clone, '2026-11-21T01:00:00Z');
  const files = join(work.path, 'files');
  await mkdir(files);
  await writeFile(join(files, 'a.txt'), 'a file the guest agent backed up\n');
  const fileSnapshot = await backupFiles(src, { host: 'guest', paths: [files] });

  const first = await syncSnapshots(src, dst, { now });
  assert.deepEqual([first.copied, first.failed, first.skipped], [4, 0, 0], JSON.stringify(first.snapshots));
  assert.equal(first.chunksSent, 14 + 1 + 8 + 1, 'each distinct block once: 14 of the base, 1 changed, the clone\'s 8 own, the file\'s 1');
  let trees = 0; // the path's directories down to the file's
  await walkFileTrees(src, [fileSnapshot], { tree: () => trees++ }, (damage) => assert.fail(damage.error.message));
  assert.equal(first.treesSent, trees);
  const fileCopy = (await listSnapshots(dst)).find((s) => s.files !== undefined);
  assert.ok(fileCopy !== undefined);
  assert.deepEqual(await fileBytes(dst, fileCopy), await fileBytes(src, fileSnapshot));
  for await (const tree of dst.backend.list('trees/')) assert.fail(`format 2 keeps trees in packs, not as ${tree.key}`);
  assert.ok(first.packsWritten >= 1);
  await assertSameDisks(src, dst, 3);
  const [copyOfFirst, copyOfSecond] = (await listSnapshots(dst)).filter((s) => s.vm === 'web');
  assert.equal(copyOfSecond?.parent, copyOfFirst?.id, 'the parent is the copy of the parent');

  const again = await syncSnapshots(src, dst, { now });
  assert.deepEqual([again.copied, again.present, again.skipped, again.chunksSent, again.chunksRead, again.packsWritten], [0, 4, 0, 0, 0, 0]);

  // The segments name what arrived: a new VM with the same blocks stores nothing new.
  const deduplicated = await backup(dst, 'web-clone', base, '2026-11-22T00:00:00Z');
  assert.equal(deduplicated.stats.bytesNew, 0);
});

test('format 2 → format 2 with the same keys: packs whose every chunk is needed are copied whole, as stored; the rest is re-packed', async () => {
  const src = await newRepo(2, null);
  const dst = await newRepo(2, null);
  const first = await backup(src, 'web', base, '2026-11-20T00:00:00Z');
  const report = await syncSnapshots(src, dst, { now });
  assert.deepEqual([report.sameKeys, report.copied, report.packsCopied, report.packsWritten], [true, 1, 1, 0]);
  assert.deepEqual(await packKeys(dst), await packKeys(src), 'the pack is the same object');
  assert.equal(report.snapshots[0]?.destination, first.id, 'same keys, same entries: the same manifest');

  // The destination gets a block from elsewhere: the second snapshot's pack is then needed in part only.
  await backup(dst, 'other', changed.subarray(64 * KiB, 128 * KiB), '2026-11-20T12:00:00Z');
  await backup(src, 'web', Buffer.concat([changed, seededBytes(15, 64 * KiB)]), '2026-11-21T00:00:00Z');
  const second = await syncSnapshots(src, dst, { now });
  assert.deepEqual([second.copied, second.packsCopied, second.packsWritten, second.chunksSent, second.chunksPresent], [1, 0, 1, 1, 1]);
  await assertSameDisks(src, dst, 2);
});

test('format 2 → format 1 (other keys): restores byte for byte, verifies, and a second sync copies nothing', async () => {
  const src = await newRepo(2, 'packed');
  const dst = await newRepo(1, 'loose');
  await backup(src, 'web', base, '2026-11-20T00:00:00Z');
  await backup(src, 'web', changed, '2026-11-21T00:00:00Z');
  const report = await syncSnapshots(src, dst, { now });
  assert.deepEqual([report.copied, report.chunksSent, report.chunksReused], [2, 14 + 1, 13]);
  await assertSameDisks(src, dst, 2);
  const again = await syncSnapshots(src, dst, { now });
  assert.deepEqual([again.copied, again.present, again.chunksSent], [0, 2, 0]);
});

test('an interrupted migration keeps the packs it sent: the next run finds them and sends only the rest', async () => {
  const src = await newRepo(1, null);
  const dst = await newRepo(2, 'new');
  const big = seededBytes(16, 200 * 64 * KiB);
  await backup(src, 'big', big, '2026-11-20T00:00:00Z');
  const controller = new AbortController();
  await assert.rejects(
    syncSnapshots(src, dst, { now, signal: controller.signal, onProgress: (p) => (p.counters.chunksSent >= 64 ? controller.abort() : undefined) }),
    (error) => isCofferError(error, 'E_INTERRUPTED'),
  );
  assert.deepEqual(await listSnapshots(dst), []);
  assert.ok((await packKeys(dst)).length >= 1, 'what was sent is stored');
  const resumed = await syncSnapshots(src, dst, { now });
  assert.equal(resumed.copied, 1);
  assert.ok(resumed.chunksPresent >= 64, `${resumed.chunksPresent} chunks found from the first run`);
  assert.equal(resumed.chunksSent + resumed.chunksPresent, 200);
  await assertSameDisks(src, dst, 1);
});

test('an interrupted sync of a file snapshot between format 2 repositories (other keys) keeps what it sent: the next run finds it, copies the rest, and the files read back the same', async () => {
  const src = await newRepo(2, 'left');
  const dst = await newRepo(2, 'right');
  const files = join(work.path, 'many');
  for (let d = 0; d < 8; d++) {
    await mkdir(join(files, `d${d}`), { recursive: true });
    for (let f = 0; f < 8; f++) await writeFile(join(files, `d${d}`, `f${f}`), seededBytes(100 + d * 8 + f, 100 * KiB));
  }
  const snapshot = await backupFiles(src, { host: 'guest', paths: [files] });
  const controller = new AbortController();
  await assert.rejects(
    syncSnapshots(src, dst, { now, signal: controller.signal, onProgress: (p) => (p.counters.chunksSent >= 16 ? controller.abort() : undefined) }),
    (error) => isCofferError(error, 'E_INTERRUPTED'),
  );
  assert.deepEqual(await listSnapshots(dst), []);
  const resumed = await syncSnapshots(src, dst, { now });
  assert.equal(resumed.copied, 1, JSON.stringify(resumed.snapshots));
  assert.ok(resumed.chunksPresent >= 16, `${resumed.chunksPresent} chunks found from the first run`);
  assert.equal(resumed.chunksSent + resumed.chunksPresent, 64);
  const [copy] = await listSnapshots(dst);
  assert.ok(copy !== undefined);
  const [copied, original] = [await fileBytes(dst, copy), await fileBytes(src, snapshot)];
  assert.equal(copied.size, 64);
  assert.deepEqual(copied, original);
  assert.deepEqual((await verifyRepository(dst, { readData: true, now })).damaged, []);
});

test('a sync of several file snapshots between format 2 repositories counts each byte it read from the source once (a later snapshot\'s trees did not count the earlier ones\' again)', async () => {
  const srcDir = join(work.path, `repo${made++}`);
  await initRepository(new LocalBackend(srcDir), { passphrase: 'left', format: 2, kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * KiB });
  const src = await openCounted(srcDir, 'left', (repo) => (repos.push(repo), repo));
  const dst = await newRepo(2, 'right');
  const files = join(work.path, 'counted');
  for (let round = 0; round < 3; round++) {
    for (let d = 0; d < 3; d++) {
      await mkdir(join(files, `d${d}`, `e${round}`), { recursive: true });
      await writeFile(join(files, `d${d}`, `e${round}`, 'f'), seededBytes(300 + round * 3 + d, 80 * KiB));
    }
    await backupFiles(src.repo, { host: 'guest', paths: [files], time: new Date(Date.UTC(2026, 10, 26, round)) });
  }
  const before = src.counting.dataBytes;
  const summary = await syncSnapshots(src.repo, dst, { now });
  assert.equal(summary.copied, 3);
  assert.equal(summary.bytesRead, src.counting.dataBytes - before);
});
