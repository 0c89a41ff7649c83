/**
 * syncSnapshots against real local repositories with different keys, behind backends that
 * behave like the destinations sync must cope with: one that refuses every delete (an
 * append-only bucket), one that stores something else than what it was given (rot, a lying
 * server), and an abort part-way. Each case runs between two repositories of format 2 (the
 * default) and between two of format 1; syncs across formats: sync-formats.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CofferError, isCofferError } from '../../errors/index.js';
import { backupBytes, closedAfter, seededBytes, snapshotDiskBytes, tempFolders } from '../../testing/index.js';
import {
  ForwardingBackend,
  initRepository,
  listLeases,
  listSnapshots,
  LocalBackend,
  openRepository,
  syncSnapshots,
  verifyRepository,
  type Backend,
  type FormatVersion,
  type Repository,
  type Snapshot,
} from '../index.js';

const KiB = 1024;
const opened = closedAfter<Repository>();
const tempFolder = tempFolders();
const tempDir = (prefix: string): Promise<string> => tempFolder(`coffer-sync-${prefix}`);

/** A new repository of `format` (64 KiB blocks; unencrypted for a null passphrase) on `wrap(LocalBackend)`. */
async function newRepo(format: FormatVersion, passphrase: string | null, wrap: (backend: Backend) => Backend = (b) => b): Promise<Repository> {
  const local = new LocalBackend(await tempDir('repo'));
  await initRepository(local, { passphrase, format, kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * KiB });
  const repo = await openRepository(wrap(local), { passphrase: passphrase ?? undefined, threads: 1 });
  opened(repo);
  return repo;
}

async function backup(repo: Repository, vm: string, bytes: Buffer, time: string): Promise<Snapshot> {
  return backupBytes(repo, vm, bytes, time, await tempDir('disk'));
}

const diskBytes = (repo: Repository, snapshot: Snapshot): Promise<Buffer> => snapshotDiskBytes(repo, snapshot);

/** Records deletes and refuses them all, as a bucket policy without s3:DeleteObject does. */
class AppendOnlyBackend extends ForwardingBackend {
  readonly deletes: string[] = [];
  override async delete(key: string): Promise<void> {
    this.deletes.push(key);
    throw new CofferError('E_BACKEND_IO', `delete of ${key} refused: append-only`);
  }
}

/**
 * Stores chunks (format 1) and packs (format 2) with their middle byte flipped: what arrives is
 * not what was sent (in a pack, the middle of the test's one frame of chunks).
 */
class RottingBackend extends AppendOnlyBackend {
  override put(key: string, data: Uint8Array) {
    if (!key.startsWith('chunks/') && !key.startsWith('packs/')) return super.put(key, data);
    const rotten = Buffer.from(data);
    const middle = rotten.length >> 1;
    rotten[middle] = (rotten[middle] as number) ^ 1;
    return super.put(key, rotten);
  }
  override async delete(key: string): Promise<void> {
    this.deletes.push(key);
  }
}

const now = () => new Date('2026-11-26T00:00:00Z');

for (const format of [2, 1] as const) {
  test(`format ${format}: to an append-only destination with other keys: copies read back byte for byte, nothing but the lease is ever deleted, a grown disk reuses its unchanged blocks`, async () => {
    const src = await newRepo(format, 'source');
    let appendOnly: AppendOnlyBackend | undefined;
    const dst = await newRepo(format, 'destination', (backend) => (appendOnly = new AppendOnlyBackend(backend)));
    const v1 = Buffer.concat([seededBytes(1, 512 * KiB), Buffer.alloc(256 * KiB), seededBytes(2, 256 * KiB)]);
    const v2 = Buffer.concat([v1.subarray(0, 64 * KiB), seededBytes(3, 64 * KiB), v1.subarray(128 * KiB), seededBytes(4, 128 * KiB)]); // one block changed, two added
    const first = await backup(src, 'vm', v1, '2026-11-20T00:00:00Z');
    const report1 = await syncSnapshots(src, dst, { now });
    assert.deepEqual([report1.copied, report1.chunksSent, report1.chunksRead], [1, 12, 12]);
    const second = await backup(src, 'vm', v2, '2026-11-21T00:00:00Z');
    const report2 = await syncSnapshots(src, dst, { now });
    assert.deepEqual([report2.copied, report2.present], [1, 1]);
    assert.equal(report2.chunksRead, 3, 'only the changed and the added blocks are read');
    assert.equal(report2.chunksSent, 3);
    assert.equal(report2.chunksReused, 11);

    const copies = await listSnapshots(dst);
    assert.deepEqual(copies.map((c) => c.time), [first.time, second.time]);
    assert.equal(copies[1]?.parent, copies[0]?.id, 'the parent is the copy of the parent');
    assert.ok((await diskBytes(dst, copies[0] as Snapshot)).equals(v1));
    assert.ok((await diskBytes(dst, copies[1] as Snapshot)).equals(v2));
    const verify = await verifyRepository(dst, { readData: true, now });
    assert.deepEqual(verify.damaged, []);

    assert.ok(appendOnly !== undefined);
    assert.ok(appendOnly.deletes.length >= 2, 'each sync tried to release its lease');
    assert.deepEqual(appendOnly.deletes.filter((key) => !key.startsWith('leases/')), []);
    // The refused release leaves the lease to expire; a new backup or sync is not held up by it.
    assert.equal((await listLeases(dst, now())).filter((l) => l.kind === 'backup').length, 2);
  });

  test(`format ${format}: what does not read back intact fails the snapshot with E_VERIFY_FAILED, and no manifest names it`, async () => {
    const src = await newRepo(format, 'source');
    const dst = await newRepo(format, 'destination', (backend) => new RottingBackend(backend));
    await backup(src, 'vm', seededBytes(5, 256 * KiB), '2026-11-20T00:00:00Z');
    const report = await syncSnapshots(src, dst, { now });
    assert.equal(report.failed, 1);
    assert.equal(report.snapshots[0]?.error?.code, 'E_VERIFY_FAILED');
    assert.deepEqual(await listSnapshots(dst), []);
  });

  test(`format ${format}: an abort stops the sync with E_INTERRUPTED, writes no manifest and releases the lease`, async () => {
    const src = await newRepo(format, 'source');
    const dst = await newRepo(format, 'destination');
    await backup(src, 'vm', seededBytes(6, 256 * KiB), '2026-11-20T00:00:00Z');
    const controller = new AbortController();
    await assert.rejects(
      syncSnapshots(src, dst, { now, signal: controller.signal, onProgress: () => controller.abort() }),
      (error) => isCofferError(error, 'E_INTERRUPTED'),
    );
    assert.deepEqual(await listSnapshots(dst), []);
    assert.deepEqual(await listLeases(dst, now()), []);
    const resumed = await syncSnapshots(src, dst, { now });
    assert.equal(resumed.copied, 1);
  });

  test(`format ${format}: from an unencrypted repository to an encrypted one, and back: ids change, data does not`, async () => {
    const plain = await newRepo(format, null);
    const sealed = await newRepo(format, 'destination');
    const back = await newRepo(format, null);
    const data = Buffer.concat([seededBytes(7, 192 * KiB), Buffer.alloc(64 * KiB)]);
    const original = await backup(plain, 'vm', data, '2026-11-20T00:00:00Z');
    const there = await syncSnapshots(plain, sealed, { now });
    assert.deepEqual([there.sameKeys, there.copied, there.chunksSent], [false, 1, 3]);
    const again = await syncSnapshots(sealed, back, { now });
    assert.deepEqual([again.sameKeys, again.copied, again.chunksSent], [false, 1, 3]);
    // Unencrypted ids are SHA-256 of the content on both ends: in format 1 the round trip gives
    // the same manifest back. (In format 2 the disk index names the packs, which each
    // destination writes anew: the data comes back, the manifest differs.)
    if (format === 1) assert.equal(again.snapshots[0]?.destination, original.id);
    const [copy] = await listSnapshots(back);
    assert.ok((await diskBytes(back, copy as Snapshot)).equals(data));
  });

  test(`format ${format}: a sync back to where a snapshot came from finds the original and adds no second copy`, async () => {
    const home = await newRepo(format, 'home');
    const offsite = await newRepo(format, 'offsite');
    const first = await backup(home, 'vm', seededBytes(8, 128 * KiB), '2026-11-20T00:00:00Z');
    const second = await backup(home, 'vm', seededBytes(9, 128 * KiB), '2026-11-21T00:00:00Z');
    assert.equal((await syncSnapshots(home, offsite, { now })).copied, 2);
    const offsiteOnly = await backup(offsite, 'vm', seededBytes(10, 128 * KiB), '2026-11-22T00:00:00Z');
    const back = await syncSnapshots(offsite, home, { now });
    assert.deepEqual([back.copied, back.present], [1, 2], 'only the snapshot made offsite is copied back');
    const bySource = new Map(back.snapshots.map((s) => [s.source, s]));
    const copies = (await listSnapshots(offsite)).filter((s) => s.id !== offsiteOnly.id).map((s) => s.id);
    assert.deepEqual(copies.map((id) => bySource.get(id)?.destination).sort(), [first.id, second.id].sort(), 'each copy is matched with its original');
    assert.equal((await listSnapshots(home)).length, 3, 'home holds its two snapshots and the offsite one, once each');
  });

  test(`format ${format}: a chain of syncs A → B → C knows C's copies are A's snapshots: C → A and A → C copy and read nothing`, async () => {
    const a = await newRepo(format, 'a');
    const b = await newRepo(format, 'b');
    const c = await newRepo(format, 'c');
    const originals = [await backup(a, 'vm', seededBytes(11, 192 * KiB), '2026-11-20T00:00:00Z'), await backup(a, 'vm', seededBytes(12, 192 * KiB), '2026-11-21T00:00:00Z')];
    assert.equal((await syncSnapshots(a, b, { now })).copied, 2);
    assert.equal((await syncSnapshots(b, c, { now })).copied, 2);
    const cToA = await syncSnapshots(c, a, { now });
    assert.deepEqual([cToA.copied, cToA.present, cToA.bytesRead, cToA.chunksSent], [0, 2, 0, 0], 'A holds the originals: nothing read, nothing sent');
    assert.deepEqual(cToA.snapshots.map((s) => s.destination).sort(), originals.map((o) => o.id).sort(), 'each copy is matched with its original');
    const aToC = await syncSnapshots(a, c, { now });
    assert.deepEqual([aToC.copied, aToC.present, aToC.bytesRead], [0, 2, 0], 'C holds copies of both (through B)');
    assert.equal((await listSnapshots(a)).length, 2);
    assert.equal((await listSnapshots(c)).length, 2);
  });
}
