/**
 * Tape export and import of a format 2 repository (tape format version 2): a set over several
 * file volumes holding whole packs and index segments, listed by GNU tar, imported into an
 * empty folder that becomes the repository again: every snapshot reads back byte for byte,
 * verify reads all data, and the chunk index knows what arrived.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { backupBytes, makeTempDir, requireTools, runTool, seededBytes, snapshotDiskBytes } from '../../testing/index.js';
import {
  exportTape,
  fileVolumeSource,
  fileVolumeTarget,
  importTape,
  initRepository,
  listSnapshots,
  LocalBackend,
  openRepository,
  TAPE_FORMAT_VERSION_PACKS,
  verifyRepository,
  type Repository,
  type Snapshot,
} from '../index.js';

const KiB = 1024;
const now = () => new Date('2026-11-26T00:00:00Z');
let work: { path: string; remove(): Promise<void> };
const opened: Repository[] = [];
before(async () => {
  await requireTools('tar');
  work = await makeTempDir('coffer-tape-v2');
});
after(async () => {
  for (const repo of opened) await repo.close();
  await work?.remove();
});

async function open(path: string): Promise<Repository> {
  const repo = await openRepository(new LocalBackend(path), { passphrase: 'tape', threads: 1 });
  opened.push(repo);
  return repo;
}

function backup(repo: Repository, vm: string, bytes: Buffer, time: string): Promise<Snapshot> {
  return backupBytes(repo, vm, bytes, time, work.path);
}

const diskBytes = (repo: Repository, snapshot: Snapshot): Promise<Buffer> => snapshotDiskBytes(repo, snapshot);

test('a format 2 repository on tape: packs and segments over several volumes, GNU tar lists them, an import into an empty folder restores byte for byte and verifies', async () => {
  const path = join(work.path, 'repo');
  await initRepository(new LocalBackend(path), { passphrase: 'tape', format: 2, kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * KiB });
  const repo = await open(path);
  const base = Buffer.concat([seededBytes(31, 1024 * KiB), Buffer.alloc(256 * KiB)]);
  const changed = Buffer.concat([base.subarray(0, 64 * KiB), seededBytes(32, 640 * KiB), base.subarray(704 * KiB)]);
  await backup(repo, 'web', base, '2026-11-20T00:00:00Z');
  await backup(repo, 'web', changed, '2026-11-21T00:00:00Z');
  await backup(repo, 'db', Buffer.concat([base.subarray(0, 512 * KiB), seededBytes(33, 512 * KiB)]), '2026-11-21T01:00:00Z');
  const snapshots = await listSnapshots(repo);

  const tape = join(work.path, 'set.tar');
  const report = await exportTape(repo, snapshots, { target: fileVolumeTarget(tape, { split: true }), recordSize: 64 * KiB, volumeSize: 1600 * KiB, now: now() });
  assert.ok(report.volumes.length >= 2, `${report.volumes.length} volumes`);
  const members = (await Promise.all(report.volumes.map(async (v) => (await runTool('tar', ['-tf', v.name])).trim().split('\n')))).flat();
  assert.equal(members.filter((name) => name.startsWith('packs/')).length, 3, 'each pack once');
  assert.ok(members.some((name) => name.startsWith('segments/')));
  assert.deepEqual(members.filter((name) => name.startsWith('chunks/')), []);
  const label = JSON.parse(await runTool('tar', ['-xOf', report.volumes[0]?.name as string, 'COFFER-TAPE/label.json'])) as { version: number };
  assert.equal(label.version, TAPE_FORMAT_VERSION_PACKS);

  const target = join(work.path, 'imported');
  const imported = await importTape(
    report.volumes.map((v) => fileVolumeSource(v.name)),
    new LocalBackend(target),
    { passphrase: 'tape', threads: 1, now: now() },
  );
  assert.equal(imported.createdRepository, true);
  assert.equal(imported.snapshots.length, 3);
  const restored = await open(target);
  assert.equal(restored.config.version, 2);
  for (const snapshot of snapshots) {
    const copy = (await listSnapshots(restored)).find((s) => s.id === snapshot.id);
    assert.ok(copy !== undefined);
    assert.ok((await diskBytes(restored, copy)).equals(await diskBytes(repo, snapshot)), `${snapshot.vm} ${snapshot.time} byte for byte`);
  }
  assert.deepEqual((await verifyRepository(restored, { readData: true, now })).damaged, []);
  const again = await backup(restored, 'web-clone', changed, '2026-11-22T00:00:00Z');
  assert.equal(again.stats.bytesNew, 0, 'the imported segments name every chunk on the tape');
});
