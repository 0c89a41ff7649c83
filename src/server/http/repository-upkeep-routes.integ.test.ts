/**
 * GET /repositories/{repo}/space, /tape-catalog and /snapshots/{id}/records through a real
 * `coffer server` process:
 * - space: a local repository's free and total bytes equal what `stat -f` (coreutils, statfs
 *   read by another program) reports for its folder, within the blocks written meanwhile; an
 *   S3 repository answers null with the reason (nothing is opened);
 * - snapshot records: a snapshot's verification, test restore and tapes, after real `coffer
 *   verify --read-data` and `coffer test-restore` runs; then the boot check of a real `coffer
 *   test-restore --boot` (QEMU under TCG, the host's OVMF, until its boot manager speaks);
 * - tape catalog: empty for a repository never written to tape; after a real `coffer tape
 *   export` of two snapshots to a file (the "tape") and `coffer forget` of one, both listed with
 *   their tape set, volume and time, the forgotten one marked as no longer in the repository;
 *   a token limited to another repository is refused (403).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { requireTools, seededBytes } from '../../testing/index.js';
import { firstAdminToken, runCoffer, startServer, type RequestOptions, type Response, type ServerProcess } from './server-harness.js';

const run = promisify(execFile);
const dir = await mkdtemp(join(tmpdir(), 'coffer-upkeep-'));
const data = join(dir, 'data');
const repo = join(dir, 'repo');
const passFile = join(dir, 'repo.pass');
const tape = join(dir, 'nightly.tar');
let server: ServerProcess;
const empty = join(dir, 'empty-repo');
const snapshots: string[] = [];
let tapeSet = '';
let adminToken = '';
let otherRepoToken = '';

before(async () => {
  await requireTools('stat', 'qemu-system-x86_64');
  await writeFile(passFile, 'upkeep passphrase\n');
  const disk = join(dir, 'disk.raw');
  for (const r of [repo, empty]) assert.equal((await runCoffer(['init', '-r', r, '--password-file', passFile])).code, 0);
  for (const seed of [21, 22]) {
    await writeFile(disk, seededBytes(seed, 1 << 20));
    const backup = await runCoffer(['backup', '-r', repo, '--password-file', passFile, '--vm', 'web1', '--json', disk]);
    assert.equal(backup.code, 0, backup.stderr);
    snapshots.push((JSON.parse(backup.stdout) as { id: string }).id);
  }
  const exported = await runCoffer(['tape', 'export', '-r', repo, '--password-file', passFile, ...snapshots.map((s) => s.slice(0, 8)), '--to', tape, '--json']);
  assert.equal(exported.code, 0, exported.stderr);
  tapeSet = (JSON.parse(exported.stdout) as { tapeSet: string }).tapeSet;
  const forgotten = await runCoffer(['forget', '-r', repo, '--password-file', passFile, (snapshots[0] as string).slice(0, 8)]);
  assert.equal(forgotten.code, 0, forgotten.stderr);
  await mkdir(data, { recursive: true });
  await writeFile(
    join(data, 'coffer.yaml'),
    `repositories:\n  - name: main\n    url: ${repo}\n    passphrase-file: ${passFile}\n  - name: empty\n    url: ${empty}\n    passphrase-file: ${passFile}\n  - name: offsite\n    url: s3://coffer-upkeep-test-bucket/repo\nhosts:\n  - name: hv1\nvms:\n  - name: web1\n    host: hv1\n    source: { images: [${disk}] }\n`,
  );
  server = await startServer(['--data', data, '--listen', '127.0.0.1:0']);
  adminToken = await firstAdminToken(server, 'upkeep admin password');
  otherRepoToken = (await call('POST', '/tokens', { body: { name: 'offsite-auditor', grants: [{ role: 'Auditor', path: '/repositories/offsite' }] } })).json.secret;
});

after(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

function call(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
  return server.request(method, `/api/v1${path}`, { token: adminToken, ...options });
}

test('space: a local repository\'s free and total bytes are its filesystem\'s (stat -f); S3 answers null with the reason', async () => {
  const answer = await call('GET', '/repositories/main/space');
  assert.equal(answer.status, 200, answer.text);
  // %a: blocks available to non-root, %b: total blocks, %S: the fundamental block size (statfs f_frsize... f_bsize as Node reads it).
  const [available, blocks, size] = (await run('stat', ['-f', '-c', '%a %b %S', repo])).stdout.trim().split(' ').map(Number) as [number, number, number];
  assert.equal(answer.json.local, true);
  assert.equal(answer.json.totalBytes, blocks * size);
  // Other engineers' tests write to the same filesystem meanwhile: equal within 256 MiB.
  assert.ok(Math.abs(answer.json.freeBytes - available * size) < 256 * 1024 * 1024, `${answer.json.freeBytes} against ${available * size}`);
  assert.match(answer.json.explanation, /the filesystem holding/);

  const s3 = await call('GET', '/repositories/offsite/space');
  assert.equal(s3.status, 200, s3.text);
  assert.deepEqual([s3.json.local, s3.json.freeBytes, s3.json.totalBytes], [false, null, null]);
  assert.match(s3.json.explanation, /S3 or a repository server/);

  assert.equal((await call('GET', '/repositories/nosuch/space')).status, 404);
  assert.equal((await call('GET', '/repositories/main/space', { token: otherRepoToken })).status, 403);
});

test('tape catalog: empty for a repository never written to tape; the exported snapshots with their set and volume, a forgotten one still listed', async () => {
  const none = await call('GET', '/repositories/empty/tape-catalog');
  assert.equal(none.status, 200, none.text);
  assert.deepEqual(none.json, { entries: [], damagedNotes: 0 });

  const listed = await call('GET', '/repositories/main/tape-catalog');
  assert.equal(listed.status, 200, listed.text);
  const entries = (listed.json.entries as { snapshot: string; vm: string; time: string; inRepository: boolean; tapeSet: string; volumes: unknown; imported: boolean; written: string }[])
    .sort((a, b) => snapshots.indexOf(a.snapshot) - snapshots.indexOf(b.snapshot));
  assert.deepEqual(
    entries.map(({ written: _written, ...rest }) => rest),
    snapshots.map((snapshot, i) => ({ snapshot, vm: 'web1', time: entries[i]?.time, inRepository: i === 1, tapeSet, volumes: [{ sequence: 1, name: tape }], imported: false })),
  );
  for (const e of entries) assert.match(e.time, /^\d{4}-\d\d-\d\dT/, 'the snapshot\'s time');
  for (const e of entries) assert.ok(Math.abs(Date.parse(e.written) - Date.now()) < 300_000, e.written);
  assert.equal(listed.json.damagedNotes, 0);

  assert.equal((await call('GET', '/repositories/main/tape-catalog', { token: otherRepoToken })).status, 403);
});

test('snapshot records: none at first; then the verification, the test restore and the tape, as `coffer verify` and `coffer test-restore` recorded them', async () => {
  const id = snapshots[1] as string;
  const before = await call('GET', `/repositories/main/snapshots/${id.slice(0, 12)}/records`);
  assert.equal(before.status, 200, before.text);
  assert.deepEqual([before.json.snapshot, before.json.verification, before.json.testRestore, before.json.damagedNotes], [id, null, null, 0]);
  assert.deepEqual(before.json.tapes.map((t: { tapeSet: string; volumes: unknown }) => [t.tapeSet, t.volumes]), [[tapeSet, [{ sequence: 1, name: tape }]]]);

  const verified = await runCoffer(['verify', '-r', repo, '--password-file', passFile, '--read-data']);
  assert.equal(verified.code, 0, verified.stderr);
  const tested = await runCoffer(['test-restore', '-r', repo, '--password-file', passFile, id.slice(0, 8), '--json']);
  assert.equal(tested.code, 0, tested.stderr);
  const after = await call('GET', `/repositories/main/snapshots/${id}/records`);
  assert.equal(after.status, 200, after.text);
  assert.equal(after.json.verification.chunks, after.json.verification.verifiedChunks);
  assert.ok(after.json.verification.chunks > 0);
  assert.match(after.json.verification.fullyVerifiedAt, /^\d{4}-/);
  assert.deepEqual([after.json.testRestore.passed, after.json.testRestore.failures, after.json.testRestore.boot], [true, [], null]);
  assert.equal(after.json.tapes.length, 1);

  // Booted: the disk (seeded bytes) holds no system, but OVMF's boot manager names it on the serial console within seconds.
  const booted = await runCoffer(['test-restore', '-r', repo, '--password-file', passFile, id.slice(0, 8), '--no-fsck', '--boot', '--boot-firmware', 'uefi', '--accel', 'tcg', '--boot-expect', 'BdsDxe', '--boot-timeout', '90'], 120_000);
  assert.equal(booted.code, 0, booted.stdout + booted.stderr);
  const boot = (await call('GET', `/repositories/main/snapshots/${id}/records`)).json.testRestore.boot;
  assert.deepEqual({ ...boot, secondsToText: typeof boot.secondsToText, serialTail: typeof boot.serialTail }, {
    passed: true, expect: 'BdsDxe', machine: 'q35', accel: 'tcg', firmware: 'uefi', secureBoot: false, secondsToText: 'number', reason: null, serialTail: 'string',
  });
  assert.ok(boot.secondsToText > 0 && boot.secondsToText < 90, String(boot.secondsToText));
  assert.match(boot.serialTail, /BdsDxe/);
  assert.doesNotMatch(boot.serialTail, /\[=3h/, 'OVMF\'s terminal escape (ESC[=3h) is removed, not left as text');

  assert.equal((await call('GET', `/repositories/main/snapshots/${id}/records`, { token: otherRepoToken })).status, 403);
  assert.equal((await call('GET', '/repositories/main/snapshots/0123456789abcdef/records')).status, 404);
});
