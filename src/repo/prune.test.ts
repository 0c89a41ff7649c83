import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { backupVm } from '../backup/index.js';
import { CofferError, isCofferError } from '../errors/index.js';
import { openImageSource } from '../source/index.js';
import { seededBytes } from '../testing/index.js';
import {
  acquireBackupLease,
  acquirePruneLease,
  addSnapshotNote,
  CHUNKS_PREFIX,
  deleteSnapshot,
  ForwardingBackend,
  initRepository,
  LEASE_EXPIRY_MS,
  listLeases,
  listSnapshotNotes,
  LocalBackend,
  openRepository,
  pruneRepository,
  setSnapshotTags,
  SPACE_RESERVE_BYTES,
  TAGS_PREFIX,
  verifyRepository,
  writeTagRecord,
  type FormatVersion,
  type Repository,
} from './index.js';

const KiB = 1024;
const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** A new repository of `format` (default: the library's, 2). */
async function newRepo(format?: FormatVersion): Promise<Repository> {
  const root = await mkdtemp(join(tmpdir(), 'coffer-prune-'));
  dirs.push(root);
  const backend = new LocalBackend(root);
  await initRepository(backend, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * KiB, ...(format === undefined ? {} : { format }) });
  return openRepository(backend, { passphrase: 'pw', threads: 2 });
}

async function backup(repo: Repository, vm: string, bytes: Buffer) {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-prune-disk-'));
  dirs.push(dir);
  await writeFile(join(dir, 'disk.raw'), bytes);
  const source = await openImageSource(vm, [join(dir, 'disk.raw')]);
  try {
    return await backupVm(repo, source, { parent: null });
  } finally {
    await source.close();
  }
}

async function count(repo: Repository, prefix: string): Promise<number> {
  let n = 0;
  for await (const _ of repo.backend.list(prefix)) n++;
  return n;
}

// Format 1 on purpose: it counts chunk objects (`chunks/`). Format 2's prune (packs, repacking):
// prune-packs.test.ts.
test('format 1: prune removes exactly what no snapshot references, and the notes and tag records of forgotten snapshots', async () => {
  const repo = await newRepo(1);
  try {
    const shared = seededBytes(1, 512 * KiB); // 8 chunks both snapshots use
    const a = await backup(repo, 'a', Buffer.concat([shared, seededBytes(2, 256 * KiB)]));
    const b = await backup(repo, 'b', Buffer.concat([shared, seededBytes(3, 384 * KiB)]));
    await addSnapshotNote(repo, a.id, 'test-restore', { passed: true });
    await setSnapshotTags(repo, a, { add: ['legal-hold'] }, { now: new Date() });
    assert.equal(await count(repo, CHUNKS_PREFIX), 8 + 4 + 6);
    const dry = await pruneRepository(repo, { dryRun: true });
    assert.equal(dry.chunksRemoved, 0);
    assert.equal(dry.chunksKept, 18);

    await deleteSnapshot(repo, a.id);
    assert.equal((await listSnapshotNotes(repo)).length, 0, 'forget removes the notes of the snapshot');
    assert.equal(await count(repo, TAGS_PREFIX), 0, 'forget removes the tag records of the snapshot');
    await addSnapshotNote(repo, a.id, 'test-restore', { passed: true }); // orphans, as a crash would leave
    await writeTagRecord(repo, a.id, ['legal-hold'], new Date());
    const preview = await pruneRepository(repo, { dryRun: true });
    assert.deepEqual([preview.chunksRemoved, preview.notesRemoved, preview.tagRecordsRemoved], [4, 1, 1]);
    assert.equal(await count(repo, TAGS_PREFIX), 1, 'a dry run removes no tag record');
    assert.equal(await count(repo, CHUNKS_PREFIX), 18, 'a dry run removes nothing');

    const report = await pruneRepository(repo);
    assert.equal(report.chunksRemoved, 4);
    assert.ok(report.indexPagesRemoved >= 1, 'a\'s index page went too');
    assert.equal(report.notesRemoved, 1);
    assert.equal(report.tagRecordsRemoved, 1);
    assert.equal(await count(repo, TAGS_PREFIX), 0);
    assert.ok(report.bytesFreed > 4 * 64 * KiB * 0.9, `${report.bytesFreed} bytes freed`);
    assert.equal(report.chunksKept, 14);
    assert.equal(await count(repo, CHUNKS_PREFIX), 14);
    const verify = await verifyRepository(repo, { readData: true, now: () => new Date() });
    assert.deepEqual(verify.damaged, [], 'b restores in full');
    assert.equal(verify.verification[0]?.snapshot, b.id);
    assert.deepEqual(await pruneRepository(repo).then((r) => [r.chunksRemoved, r.indexPagesRemoved]), [0, 0], 'a second prune finds nothing');
  } finally {
    await repo.close();
  }
});

test('a prune waits for a running backup, and a backup for a running prune; neither deadlocks', async () => {
  const repo = await newRepo();
  try {
    const running = await acquireBackupLease(repo);
    await assert.rejects(pruneRepository(repo, { waitMs: 0 }), (e: unknown) => isCofferError(e, 'E_REPO_BUSY') && /backups are running \(backup on /.test((e as Error).message));
    const waiting = pruneRepository(repo, { waitMs: 20_000, pollMs: 20 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    // While the prune waits, a new backup waits for it (its lease taken back meanwhile).
    const second = acquireBackupLease(repo, { waitMs: 20_000, pollMs: 20 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    // The waiting backup holds its lease only for the instants it looks again: most of the time
    // only the first backup and the prune hold one.
    let withdrawn = false;
    for (let i = 0; i < 200 && !withdrawn; i++) {
      withdrawn = (await listLeases(repo)).map((l) => l.kind).sort().join() === 'backup,prune';
      if (!withdrawn) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.ok(withdrawn, 'the waiting backup takes its lease back');
    await running.release();
    await waiting;
    const lease = await second;
    assert.equal(lease.kind, 'backup');
    await assert.rejects(acquirePruneLease(repo, { waitMs: 0 }), (e: unknown) => isCofferError(e, 'E_REPO_BUSY'));
    await lease.release();
    assert.deepEqual(await listLeases(repo), []);
  } finally {
    await repo.close();
  }
});

test('a dead process\'s lease expires and is removed; a backup whose lease was removed refuses to write its manifest', async () => {
  const repo = await newRepo();
  try {
    const longAgo = new Date(Date.now() - LEASE_EXPIRY_MS - 60_000);
    const dead = await acquireBackupLease(repo, { now: () => longAgo });
    const report = await pruneRepository(repo, { waitMs: 0 });
    assert.equal(report.expiredLeasesRemoved, 1);
    await assert.rejects(dead.confirm(), (e: unknown) => isCofferError(e, 'E_LEASE_LOST'));
    await dead.release();
    // Two prunes at once: the second one is refused at once.
    const { lease } = await acquirePruneLease(repo, { waitMs: 0 });
    await assert.rejects(pruneRepository(repo, { waitMs: 10_000 }), (e: unknown) => isCofferError(e, 'E_REPO_BUSY') && /another prune/.test((e as Error).message));
    await lease.release();
  } finally {
    await repo.close();
  }
});

for (const format of [1, 2] as const) {
  test(`format ${format}: prune deletes the temporary files of writes a killed process never finished, once they are an hour old`, async () => {
    const repo = await newRepo(format);
    await backup(repo, 'vm', seededBytes(40, 256 * KiB));
    const root = repo.location;
    const data = format === 1 ? 'chunks' : 'packs';
    const [folder] = (await readdir(join(root, data))).filter((name) => /^[0-9a-f]{2}$/.test(name));
    assert.ok(folder !== undefined);
    // A pack or chunk half written by a process killed two hours ago, and one being written now.
    const stale = join(root, data, folder, '.tmp-0123456789abcdef');
    const fresh = join(root, data, folder, '.tmp-fedcba9876543210');
    await writeFile(stale, Buffer.alloc(100 * KiB, 1));
    await writeFile(fresh, Buffer.alloc(10 * KiB, 2));
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    await utimes(stale, twoHoursAgo, twoHoursAgo);

    const dry = await pruneRepository(repo, { dryRun: true });
    assert.equal(dry.temporaryFilesRemoved, undefined, 'a dry run deletes nothing');
    const report = await pruneRepository(repo);
    assert.deepEqual(report.temporaryFilesRemoved, { files: 1, bytes: 100 * KiB });
    assert.deepEqual((await readdir(join(root, data, folder))).filter((name) => name.startsWith('.tmp-')), ['.tmp-fedcba9876543210'], 'a write under way is left alone');
    assert.deepEqual((await verifyRepository(repo, { readData: true, now: () => new Date() })).damaged, []);
  });
}

test('a space reserve cut short is written whole again, and on a full disk the error says it was too short', async () => {
  const repo = await newRepo(2);
  await backup(repo, 'vm', seededBytes(41, 128 * KiB));
  const reserve = join(repo.location, 'reserve');
  await truncate(reserve, 1000);
  assert.equal((await pruneRepository(repo, { dryRun: true })).spaceReserve, undefined, 'a dry run writes nothing');
  assert.equal((await stat(reserve)).size, 1000);
  const rewritten = await pruneRepository(repo);
  assert.equal((await stat(reserve)).size, SPACE_RESERVE_BYTES, 'the next prune writes it whole');
  assert.deepEqual(rewritten.spaceReserve, { released: false, missing: false, restored: true, written: true }, 'and says so, the disk not full');
  assert.equal((await pruneRepository(repo)).spaceReserve, undefined, 'in place: nothing to say');

  // No room for the reserve once prune is done: restored false.
  await rm(reserve);
  class NoRoomForReserve extends ForwardingBackend {
    override put(key: string, data: Uint8Array): Promise<void> {
      return key === 'reserve' ? Promise.reject(new CofferError('E_NO_SPACE', 'no space left to write reserve')) : super.put(key, data);
    }
  }
  const cramped = await openRepository(new NoRoomForReserve(repo.backend), { passphrase: 'pw', threads: 1 });
  try {
    assert.deepEqual((await pruneRepository(cramped)).spaceReserve, { released: false, missing: false, restored: false, written: false });
  } finally {
    await cramped.close();
  }
  await pruneRepository(repo);

  // A disk with no room for any write: the 1000 bytes released are not enough, and the error says so.
  await truncate(reserve, 1000);
  class FullDisk extends ForwardingBackend {
    override put(key: string, data: Uint8Array): Promise<void> {
      if (key === 'reserve' || key.startsWith('locks/') || key.startsWith('leases/')) return Promise.reject(new CofferError('E_NO_SPACE', `no space left to write ${key}`));
      return super.put(key, data);
    }
  }
  const full = await openRepository(new FullDisk(repo.backend), { passphrase: 'pw', threads: 1 });
  await assert.rejects(pruneRepository(full), (error) => isCofferError(error, 'E_NO_SPACE') && /space reserve held only 1000 bytes .*free a few MiB/.test(error.message));
});
