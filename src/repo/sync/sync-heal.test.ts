/**
 * syncSnapshots heals the copies already in the destination (heal-copies.ts), between real
 * local repositories of both formats, with other keys and with the same keys: a chunk object
 * (format 1) or a pack (format 2) deleted there is found from one listing and sent again; a
 * flipped byte is found with `readData` and sent again; afterwards verify finds nothing and
 * the copies read back byte for byte, and a sync over a whole destination reads no chunk of
 * either side (only the copies' index pages).
 */
import assert from 'node:assert/strict';
import { cp, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { backupBytes, closedAfter, flipByte, seededBytes, snapshotDiskBytes, tempFolders } from '../../testing/index.js';
import {
  initRepository,
  listSnapshots,
  LocalBackend,
  syncSnapshots,
  verifyRepository,
  type FormatVersion,
  type Repository,
  type Snapshot,
} from '../index.js';
import { openCounted, type CountedRepository } from './counting-repository.test-support.js';

const KiB = 1024;
const opened = closedAfter<Repository>();
const tempFolder = tempFolders();
const tempDir = (prefix: string): Promise<string> => tempFolder(`coffer-heal-${prefix}`);

/** Counts the requests for data objects (chunks, packs), and the reads of index segments. */
type Opened = CountedRepository;
const open = (dir: string, passphrase: string): Promise<Opened> => openCounted(dir, passphrase, opened);

/** A new repository of `format` (64 KiB blocks), and the destination: a new one with its own key, or a copy of the directory (the same key). */
async function pair(format: FormatVersion, sameKeys: boolean): Promise<{ src: Opened; dst: Opened }> {
  const srcDir = await tempDir('src');
  await initRepository(new LocalBackend(srcDir), { passphrase: 'source', format, kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * KiB });
  const dstDir = await tempDir('dst');
  if (sameKeys) await cp(srcDir, dstDir, { recursive: true });
  else await initRepository(new LocalBackend(dstDir), { passphrase: 'destination', format, kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * KiB });
  return { src: await open(srcDir, 'source'), dst: await open(dstDir, sameKeys ? 'source' : 'destination') };
}

async function backup(repo: Repository, bytes: Buffer, time: string): Promise<Snapshot> {
  return backupBytes(repo, 'vm', bytes, time, await tempDir('disk'));
}

/** Read as a restore reads: from another place when the named one fails (a healed chunk). */
function diskBytes(repo: Repository, snapshot: Snapshot): Promise<Buffer> {
  return snapshotDiskBytes(repo, snapshot, { movedChunks: true });
}

/** The files under `dir/prefix` (chunks/ or packs/), by path. */
async function dataFiles(dir: string, prefix: string): Promise<string[]> {
  const files: string[] = [];
  for (const fan of await readdir(join(dir, prefix)).catch(() => [])) for (const name of await readdir(join(dir, prefix, fan))) files.push(join(dir, prefix, fan, name));
  return files.sort();
}

/** Bytes of the distinct index pages of `snapshots`, as stored. */
async function pageBytes(dir: string, snapshots: readonly Snapshot[]): Promise<number> {
  const pages = new Set(snapshots.flatMap((s) => s.disks.flatMap((d) => d.pages)));
  let bytes = 0;
  for (const page of pages) bytes += (await stat(join(dir, 'indexes', page.slice(0, 2), page))).size;
  return bytes;
}

async function flipMiddleByte(file: string): Promise<void> {
  await flipByte(file, (await stat(file)).size >> 1, 1);
}

const now = () => new Date('2026-11-28T00:00:00Z');

for (const format of [1, 2] as const) {
  for (const sameKeys of [false, true]) {
    const keys = sameKeys ? 'the same keys' : 'other keys';
    test(`format ${format}, ${keys}: a whole destination is checked from its index pages and a listing, a deleted ${format === 1 ? 'chunk' : 'pack'} is sent again, a flipped byte with readData`, async () => {
      const { src, dst } = await pair(format, sameKeys);
      const v1 = Buffer.concat([seededBytes(1, 512 * KiB), Buffer.alloc(256 * KiB), seededBytes(2, 256 * KiB)]);
      const v2 = Buffer.concat([v1.subarray(0, 64 * KiB), seededBytes(3, 64 * KiB), v1.subarray(128 * KiB)]); // one block changed
      await backup(src.repo, v1, '2026-11-20T00:00:00Z');
      await backup(src.repo, v2, '2026-11-21T00:00:00Z');
      assert.equal((await syncSnapshots(src.repo, dst.repo, { now })).copied, 2);
      const copies = await listSnapshots(dst.repo);

      // Without `check` the copies there are not looked at: nothing is read but manifests.
      const plain = await syncSnapshots(src.repo, dst.repo, { now });
      assert.deepEqual([plain.present, plain.chunksChecked, plain.bytesReadFromDestination], [2, 0, 0]);

      // Whole: nothing but the copies' index pages is read, from either side (format 2: not
      // even the destination's index segments).
      for (const side of [src, dst]) [side.counting.dataReads, side.counting.segmentReads] = [0, 0];
      const whole = await syncSnapshots(src.repo, dst.repo, { now, check: true });
      assert.deepEqual([whole.present, whole.healed, whole.chunksChecked, whole.chunksHealed, whole.chunksSent], [2, 0, 13, 0, 0]);
      assert.deepEqual([whole.bytesRead, whole.bytesWritten, src.counting.dataReads, dst.counting.dataReads, dst.counting.segmentReads], [0, 0, 0, 0, 0]);
      assert.equal(whole.bytesReadFromDestination, await pageBytes(dst.dir, copies), 'the copies\' index pages, each once');

      // A data object deleted by hand: found from the listing, its chunks sent again.
      const victim = (await dataFiles(dst.dir, format === 1 ? 'chunks' : 'packs'))[0] as string;
      await rm(victim);
      assert.equal((await syncSnapshots(src.repo, dst.repo, { now })).chunksHealed, 0, 'not checked: not seen');
      const healed = await syncSnapshots(src.repo, dst.repo, { now, check: true });
      assert.deepEqual([healed.present + healed.healed, healed.failed, healed.copied], [2, 0, 0]);
      assert.ok(healed.healed >= 1 && healed.chunksHealed >= 1, `${healed.healed} copies healed, ${healed.chunksHealed} chunks`);
      assert.equal(healed.snapshots.filter((s) => s.status === 'healed').reduce((n, s) => Math.max(n, s.chunksHealed ?? 0), 0) <= healed.chunksHealed, true);
      assert.ok(healed.chunksRead <= healed.chunksHealed, 'only the missing chunks were read from the source');
      assert.deepEqual((await verifyRepository(dst.repo, { readData: true, now })).damaged, []);
      assert.ok((await diskBytes(dst.repo, copies[0] as Snapshot)).equals(v1));
      assert.ok((await diskBytes(dst.repo, copies[1] as Snapshot)).equals(v2));
      const after = await syncSnapshots(src.repo, dst.repo, { now, check: true });
      assert.deepEqual([after.present, after.chunksHealed, after.chunksSent], [2, 0, 0], 'healed once: the next sync finds it whole');

      // A flipped byte: a listing does not see it; readData does, and sends the chunks again.
      const rotten = (await dataFiles(dst.dir, format === 1 ? 'chunks' : 'packs'))[0] as string;
      await flipMiddleByte(rotten);
      assert.equal((await syncSnapshots(src.repo, dst.repo, { now, check: true })).chunksHealed, 0);
      const read = await syncSnapshots(src.repo, dst.repo, { now, readData: true });
      assert.deepEqual([read.failed, read.copied], [0, 0]);
      assert.ok(read.chunksHealed >= 1, `${read.chunksHealed} chunks healed`);
      assert.deepEqual((await verifyRepository(dst.repo, { readData: true, now })).damaged, []);
      assert.ok((await diskBytes(dst.repo, copies[0] as Snapshot)).equals(v1));
      assert.ok((await diskBytes(dst.repo, copies[1] as Snapshot)).equals(v2));
      const again = await syncSnapshots(src.repo, dst.repo, { now, readData: true });
      assert.deepEqual([again.present, again.chunksHealed], [2, 0]);
    });
  }
}
