import assert from 'node:assert/strict';
import { truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { RateLimiter } from '../concurrency/index.js';
import { isCofferError } from '../errors/index.js';
import { initRepository, listSnapshots, LocalBackend, openRepository } from '../repo/index.js';
import { makeTempDir, seededBytes } from '../testing/index.js';
import { repositoryOpenerAt, runVmBackup, type RunVmBackupOptions, type VmBackupProgress, type VmBackupSpec } from './index.js';

const KiB = 1024;
const dir = await makeTempDir('coffer-run-vm-backup');
after(() => dir.remove());
const repoPath = join(dir.path, 'repo');
const passphraseFile = join(dir.path, 'pass');
await writeFile(passphraseFile, 'pw\n');
await initRepository(new LocalBackend(repoPath), { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * KiB });
const image = join(dir.path, 'vm1.raw');
await writeFile(image, seededBytes(7, 512 * KiB));
const spec: VmBackupSpec = { repository: { url: repoPath, passphraseFile }, vm: 'vm1', host: 'hv1', job: 'nightly', source: { images: [image] }, threads: 1 };
/** The options of a run of `s`, its repository opened as a server's worker opens it. */
const at = (s: VmBackupSpec, more: Partial<RunVmBackupOptions> = {}): RunVmBackupOptions => ({ openRepository: repositoryOpenerAt(s.repository, { env: {}, threads: 1 }), ...more });

test('a first backup is full, a second incremental, with the figures of the run', async () => {
  const first = await runVmBackup(spec, at(spec));
  assert.equal(first.mode, 'full');
  assert.match(first.modeReason, /no earlier snapshot/);
  assert.equal(first.bytesLogical, 512 * KiB);
  assert.equal(first.bytesRead, 512 * KiB);
  assert.equal(first.changeRate, 1, 'everything was new');
  assert.equal(first.consistency, 'unknown', 'image files cannot tell');
  const second = await runVmBackup(spec, at(spec));
  assert.equal(second.mode, 'incremental');
  assert.match(second.modeReason, new RegExp(first.snapshot.slice(0, 8)));
  assert.equal(second.bytesNew, 0);
  assert.equal(second.changeRate, 0);
  const repo = await openRepository(new LocalBackend(repoPath), { passphrase: 'pw', threads: 1 });
  const snapshots = await listSnapshots(repo, { vm: 'vm1' });
  await repo.close();
  assert.deepEqual(snapshots.map((s) => s.id), [first.snapshot, second.snapshot]);
  assert.ok(snapshots.every((s) => s.tags.includes('job:nightly') && s.hostname === 'hv1'));
});

test('a read limit holds the source to its rate and is named the bottleneck', async () => {
  const rate = 512 * KiB;
  const started = performance.now();
  const result = await runVmBackup({ ...spec, vm: 'vm-throttled' }, at(spec, { limits: { sourceRead: new RateLimiter({ bytesPerSecond: rate, burst: 64 * KiB }) } }));
  const seconds = (performance.now() - started) / 1000;
  // 512 KiB at 512 KiB/s after a 64 KiB burst: 0.875 s at least.
  assert.ok(seconds >= 0.8, `took ${seconds} s`);
  assert.equal(result.bottleneck, 'throttle');
  assert.ok(result.time.throttleMs > result.time.sourceMs);
});

test('an abort ends the backup with E_INTERRUPTED and records no snapshot', async () => {
  const controller = new AbortController();
  const run = runVmBackup({ ...spec, vm: 'vm-aborted' }, at(spec, { signal: controller.signal, limits: { sourceRead: new RateLimiter({ bytesPerSecond: 128 * KiB, burst: 64 * KiB }) } }));
  setTimeout(() => controller.abort(), 200);
  await assert.rejects(run, (e) => isCofferError(e, 'E_INTERRUPTED') || (e as Error).name === 'AbortError');
  const repo = await openRepository(new LocalBackend(repoPath), { passphrase: 'pw', threads: 1 });
  assert.deepEqual(await listSnapshots(repo, { vm: 'vm-aborted' }), []);
  await repo.close();
});

test('a wrong repository location is a clear error', async () => {
  const wrong: VmBackupSpec = { ...spec, repository: { url: 'ftp://nowhere/x' } };
  await assert.rejects(runVmBackup(wrong, at(wrong)), (e) => isCofferError(e, 'E_USAGE') && /ftp:/.test(e.message));
});

test('the result carries what the snapshot records: parent, capture time, disks, backup time', async () => {
  const request = { ...spec, vm: 'vm-recorded', time: '2026-01-02T03:04:05.000Z', tags: ['a'] };
  const first = await runVmBackup(request, at(spec));
  assert.equal(first.parent, null);
  assert.equal(first.snapshotTime, '2026-01-02T03:04:05.000Z');
  assert.equal(first.host, 'hv1');
  assert.deepEqual(first.disks.map((d) => d.name), ['disk0']);
  assert.deepEqual(first.skipped, []);
  assert.equal(first.consistencyRecord, undefined, 'image files record no consistency');
  assert.ok(first.backupMs <= first.durationMs);
  const second = await runVmBackup({ ...request, time: undefined }, at(spec));
  assert.equal(second.parent, first.snapshot);
  const { host: _host, ...unnamed } = request;
  const third = await runVmBackup(unnamed, at(spec));
  assert.equal(third.host, (await import('node:os')).hostname(), 'no host: this machine\'s name');
});

test('changed ranges against a base: only the listed ranges are read', async () => {
  const base = await runVmBackup({ ...spec, vm: 'vm-ranges' }, at(spec));
  const ranges = join(dir.path, 'ranges.json');
  await writeFile(ranges, JSON.stringify([[0, 64 * KiB]]));
  const result = await runVmBackup({ ...spec, vm: 'vm-ranges', base: base.snapshot.slice(0, 12), source: { images: [image], changedRanges: [ranges] } }, at(spec));
  assert.equal(result.parent, base.snapshot);
  assert.equal(result.disks[0]?.changeTracking?.method, 'changed-ranges');
  assert.equal(result.bytesRead, 64 * KiB);
  const mismatched = runVmBackup({ ...spec, vm: 'vm-ranges', base: base.snapshot, source: { images: [image], changedRanges: [ranges, ranges] } }, at(spec));
  await assert.rejects(mismatched, (e) => isCofferError(e, 'E_USAGE') && /one changed-ranges list per disk/.test(e.message));
});

test('progress counts the bytes read from the source, skipped ranges left out, and they are the bytes the read limit is paid for', async () => {
  // 1 MiB: 256 KiB of data, then a hole (never read).
  const sparse = join(dir.path, 'sparse.raw');
  await writeFile(sparse, seededBytes(8, 256 * KiB));
  await truncate(sparse, 1024 * KiB);
  const ranges = join(dir.path, 'sparse-ranges.json');
  await writeFile(ranges, JSON.stringify([[64 * KiB, 64 * KiB]]));
  const run = async (source: VmBackupSpec['source'], base?: string) => {
    let paid = 0;
    const reports: VmBackupProgress[] = [];
    const limit = { take: async (bytes: number) => void (paid += bytes) };
    const result = await runVmBackup({ ...spec, vm: 'vm-sparse', source, ...(base === undefined ? {} : { base }) }, at(spec, { limits: { sourceRead: limit }, onProgress: (p) => reports.push(p) }));
    const last = reports.at(-1) as VmBackupProgress;
    assert.equal(last.vmBytesDone, 1024 * KiB, 'progress covers the whole disk');
    assert.equal(last.sourceBytesRead, paid, 'the bytes counted read are the bytes the limit was paid for');
    assert.equal(result.bytesRead, paid);
    assert.ok(reports.every((p, i) => i === 0 || p.sourceBytesRead >= (reports[i - 1] as VmBackupProgress).sourceBytesRead), 'bytes read since the start: never decreasing');
    return { result, read: last.sourceBytesRead };
  };
  const full = await run({ images: [sparse] });
  assert.equal(full.read, 256 * KiB, 'the hole is not read');
  // An incremental told one block changed: the rest is skipped unread, though progress passes over it.
  const incremental = await run({ images: [sparse], changedRanges: [ranges] }, full.result.snapshot);
  assert.equal(incremental.result.mode, 'incremental');
  assert.equal(incremental.read, 64 * KiB);
});

test('a time that is not a date, or a sample that is not a fraction, is refused before anything opens', async () => {
  await assert.rejects(runVmBackup({ ...spec, time: 'yesterday' }, at(spec)), (e) => isCofferError(e, 'E_USAGE') && /yesterday/.test(e.message));
  await assert.rejects(runVmBackup({ ...spec, verifyUnchanged: 5 }, at(spec)), (e) => isCofferError(e, 'E_USAGE') && /verifyUnchanged 5/.test(e.message));
});
