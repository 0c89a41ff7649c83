/**
 * Black-box runs of the `coffer` binary that do not end well: killed with SIGKILL, stopped
 * with Ctrl-C, out of space, racing another backup, a source that shrinks while read. Each
 * must leave a repository that verifies, with no half snapshot, and lose nothing of the
 * snapshots already there.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, readdir, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildExt4Disk, deriveDisk, requireTools, writeSeededFile } from '../testing/index.js';
import {
  assertExit,
  assertOneLineError,
  assertSameBytes,
  chunkIds,
  coffer,
  cofferJson,
  describeRun,
  makeWorkDir,
  removeDir,
  runTool,
  startCoffer,
  waitFor,
  type BackupJson,
  type CofferResult,
  type RunningCoffer,
  type SnapshotJson,
  type VerifyJson,
} from './cli-harness.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 64 * KiB;
/** Big enough that a backup takes seconds (every chunk is fdatasync'ed), so it can be caught mid-way. */
const BIG = 128 * MiB;
const BIG_BLOCKS = BIG / BLOCK;
const ENV = { env: { COFFER_PASSWORD: 'pw' } };

let work: string;
/** BIG bytes of incompressible data, every 64 KiB block distinct, no holes. */
let big: string;
/** A small disk backed up before each mishap, to check that what was there survives. */
let small: string;

before(async () => {
  await requireTools('sfdisk', 'mke2fs', 'e2fsck', 'cp');
  work = await makeWorkDir('crash');
  big = join(work, 'big.raw');
  await writeSeededFile(big, BIG, 1);
  small = join(work, 'small.raw');
  await writeSeededFile(small, 2 * MiB, 2);
});
after(() => removeDir(work));

/** A new repository (64K blocks) holding one snapshot of `small`; returns its path and snapshot. */
async function repoWithOneSnapshot(name: string, parent = work): Promise<{ repo: string; steady: BackupJson }> {
  const repo = join(parent, name);
  // Format 1 (one object per chunk): this file's tests look at or damage chunk objects; format 2's own are in format2*.integ.test.ts.
  await cofferJson(['init', '--format', '1', '-r', repo, '--block-size', '64K'], ENV);
  const steady = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'steady', small], ENV);
  return { repo, steady };
}

/** Waits until `run` has stored at least `count` more chunk files in `repo`; false if it ended first. */
async function storedChunks(run: RunningCoffer, repo: string, count: number): Promise<boolean> {
  const already = (await chunkIds(repo)).length;
  return waitFor(async () => (await chunkIds(repo)).length >= already + count, { timeoutMs: 60_000, intervalMs: 5, stop: () => run.child.exitCode !== null || run.child.signalCode !== null });
}

/** Asserts the repository verifies in full and still restores the `steady` snapshot. */
async function assertStillWhole(repo: string, steady: BackupJson): Promise<VerifyJson> {
  const verify = await coffer(['verify', '-r', repo, '--read-data', '--json'], ENV);
  assertExit(verify, 0);
  const report = JSON.parse(verify.stdout.toString('utf8')) as VerifyJson;
  assert.deepEqual(report.damaged, []);
  const out = join(work, `${steady.id.slice(0, 8)}-${Date.now()}.raw`);
  assertExit(await coffer(['restore', '-r', repo, steady.id, '--to', out], ENV), 0);
  await assertSameBytes(out, small, 'the snapshot made before the mishap');
  return report;
}

test('kill -9 mid-backup: no snapshot, the repository verifies, the rerun reuses every stored chunk', async () => {
  const { repo, steady } = await repoWithOneSnapshot('kill-repo');
  const run = startCoffer(['backup', '-r', repo, '--vm', 'crash', '--json', big], ENV);
  assert.ok(await storedChunks(run, repo, 20), 'the backup ended before it could be killed');
  run.child.kill('SIGKILL');
  const killed = await run.done;
  assert.equal(killed.signal, 'SIGKILL', describeRun(killed));
  assert.equal(killed.stdout.length, 0);

  const listed = await cofferJson<SnapshotJson[]>(['snapshots', '-r', repo], ENV);
  assert.deepEqual(listed.map((s) => s.vm), ['steady']);
  const report = await assertStillWhole(repo, steady);
  assert.equal(report.snapshots, 1);

  const chunksBefore = new Set(await chunkIds(repo));
  const smallChunks = steady.bytesNew / BLOCK;
  const fromKilledRun = chunksBefore.size - smallChunks;
  assert.ok(fromKilledRun > 0 && fromKilledRun < BIG_BLOCKS, `${fromKilledRun} of ${BIG_BLOCKS} chunks stored before the kill`);

  const rerun = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'crash', big], ENV);
  assert.equal(rerun.parent, null, 'the killed run left a parent behind');
  assert.equal(rerun.bytesRead, BIG);
  assert.equal(rerun.bytesNew, (BIG_BLOCKS - fromKilledRun) * BLOCK, 'the rerun stored again what the killed run had stored');
  const out = join(work, 'kill-restored.raw');
  assertExit(await coffer(['restore', '-r', repo, 'crash:latest', '--to', out], ENV), 0);
  await assertSameBytes(out, big);
  const final = await assertStillWhole(repo, steady);
  assert.equal(final.chunksRead, BIG_BLOCKS + smallChunks);
});

test('Ctrl-C mid-backup: exit 130 soon after, no snapshot, the repository verifies', async () => {
  const { repo, steady } = await repoWithOneSnapshot('int-repo');
  const run = startCoffer(['backup', '-r', repo, '--vm', 'interrupted', big], { ...ENV, timeoutMs: 60_000 });
  assert.ok(await storedChunks(run, repo, 20), 'the backup ended before it could be interrupted');
  const sent = Date.now();
  run.child.kill('SIGINT');
  const result = await run.done;
  assertExit(result, 130);
  assert.ok(Date.now() - sent < 10_000, `took ${Date.now() - sent} ms to stop`);
  assert.doesNotMatch(result.stderr, /^\s+at /m);
  assert.match(result.stderr, /interrupted/);
  assert.equal(result.stdout.length, 0, 'a result was printed for an interrupted backup');
  const listed = await cofferJson<SnapshotJson[]>(['snapshots', '-r', repo], ENV);
  assert.deepEqual(listed.map((s) => s.vm), ['steady']);
  await assertStillWhole(repo, steady);
});

test('Ctrl-C with --json: stderr stays JSON lines, the error one says E_INTERRUPTED', async () => {
  const { repo } = await repoWithOneSnapshot('int-json-repo');
  const run = startCoffer(['backup', '-r', repo, '--vm', 'interrupted', '--json', big], ENV);
  assert.ok(await storedChunks(run, repo, 20), 'the backup ended before it could be interrupted');
  run.child.kill('SIGINT');
  const result = await run.done;
  assertExit(result, 130);
  const lines = result.stderr.split('\n').filter((line) => line !== '');
  for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `not a JSON line on stderr with --json: ${JSON.stringify(line)}`);
  const last = JSON.parse(lines.at(-1)!) as { type: string; code: string };
  assert.deepEqual([last.type, last.code], ['error', 'E_INTERRUPTED']);
});

test('repository storage full: exit 5 with one line, earlier snapshots intact, the repository verifies', async (t) => {
  const dir = await makeWorkDir('full');
  const mount = join(dir, 'mnt');
  await mkdir(mount);
  const mounted = await runTool('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mount]).catch((error: Error) => ({ code: -1, stdout: '', stderr: error.message }));
  if (mounted.code !== 0) {
    await removeDir(dir);
    t.skip(`cannot mount a tmpfs (needs root): ${mounted.stderr.trim()}`);
    return;
  }
  try {
    const { repo, steady } = await repoWithOneSnapshot('repo', mount);
    const fill = join(dir, 'fill.raw');
    await writeSeededFile(fill, 40 * MiB, 3);
    const full = await coffer(['backup', '-r', repo, '--vm', 'too-big', fill], ENV);
    assertExit(full, 5);
    assert.match(assertOneLineError(full), /no space/i);
    const listed = await cofferJson<SnapshotJson[]>(['snapshots', '-r', repo], ENV);
    assert.deepEqual(listed.map((s) => s.vm), ['steady']);
    await assertStillWhole(repo, steady);
    const leftovers: string[] = [];
    for (const fan of await readdir(join(repo, 'chunks'))) {
      for (const name of await readdir(join(repo, 'chunks', fan))) if (name.startsWith('.tmp-')) leftovers.push(`${fan}/${name}`);
    }
    assert.deepEqual(leftovers, [], 'temporary files left behind');
  } finally {
    const unmounted = await runTool('umount', [mount]);
    assert.equal(unmounted.code, 0, `umount ${mount}: ${unmounted.stderr}`);
    await removeDir(dir);
  }
});

test('two backups of two VMs into one repository at once both succeed and both restore', async () => {
  const base = await buildExt4Disk({ name: 'cli-crash-base', size: 48 * MiB, label: 'gpt', partitionSizeMiB: 40, files: 'small', seed: 4 });
  const clone = await deriveDisk(base.path, 'cli-crash-clone', [{ offset: 10 * MiB, bytes: 4 * MiB, seed: 5 }]);
  const { repo, steady } = await repoWithOneSnapshot('race-repo');
  const runs = [startCoffer(['backup', '-r', repo, '--vm', 'one', '--json', base.path], ENV), startCoffer(['backup', '-r', repo, '--vm', 'two', '--json', clone], ENV)];
  const [one, two] = await Promise.all(runs.map((run) => run.done));
  assertExit(one!, 0);
  assertExit(two!, 0);
  const listed = await cofferJson<SnapshotJson[]>(['snapshots', '-r', repo], ENV);
  assert.deepEqual(listed.map((s) => s.vm).sort(), ['one', 'steady', 'two']);
  for (const [vm, source] of [['one', base.path], ['two', clone]] as const) {
    const out = join(work, `race-${vm}.raw`);
    assertExit(await coffer(['restore', '-r', repo, `${vm}:latest`, '--to', out], ENV), 0);
    await assertSameBytes(out, source, `VM ${vm}`);
  }
  const report = await assertStillWhole(repo, steady);
  assert.equal(report.snapshots, 3);
});

test('a source that shrinks while read: exit 3, no snapshot, the repository verifies', async () => {
  const { repo, steady } = await repoWithOneSnapshot('shrink-repo');
  const shrinking = join(work, 'shrinking.raw');
  let result: CofferResult | undefined;
  const completed: string[] = []; // attempts the backup won: their snapshots are fine
  // The truncation must land while the backup reads; if the backup won the race, try again.
  for (let attempt = 1; attempt <= 3; attempt++) {
    await copyFile(big, shrinking);
    const vm = `shrink-${attempt}`;
    const run = startCoffer(['backup', '-r', repo, '--vm', vm, shrinking], ENV);
    const caught = await storedChunks(run, repo, 1);
    if (caught) await truncate(shrinking, BIG / 2);
    result = await run.done;
    if (result.code === 0) completed.push(vm);
    else break;
  }
  assert.ok(result !== undefined);
  assertExit(result, 3);
  assert.match(assertOneLineError(result), /shrank|ended at byte/);
  const listed = await cofferJson<SnapshotJson[]>(['snapshots', '-r', repo], ENV);
  assert.deepEqual(listed.map((s) => s.vm).sort(), ['steady', ...completed].sort(), 'the failed run recorded a snapshot');
  await assertStillWhole(repo, steady);
});
