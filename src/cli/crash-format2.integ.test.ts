/**
 * The default repository format (2, packs) under the mishaps of crash.integ.test.ts, through
 * the `coffer` binary: a backup killed with SIGKILL or stopped with Ctrl-C once some of its
 * packs are stored leaves no snapshot and a repository that verifies; the rerun restores byte
 * for byte; prune then removes what the killed run left (packs no index segment names, whose
 * chunks the rerun stored again) and every snapshot still restores.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeSeededFile } from '../testing/index.js';
import {
  assertExit,
  assertSameBytes,
  coffer,
  cofferJson,
  describeRun,
  makeWorkDir,
  removeDir,
  startCoffer,
  waitFor,
  type BackupJson,
  type RunningCoffer,
  type SnapshotJson,
  type VerifyJson,
} from './cli-harness.js';

const MiB = 1024 * 1024;
/** Incompressible, every block distinct: 128 MiB fill 16 packs of 8 MiB, so a run can be caught between them. */
const BIG = 128 * MiB;
const ENV = { env: { COFFER_PASSWORD: 'pw' } };

let work: string;
let big: string;
let small: string;

before(async () => {
  work = await makeWorkDir('crash-v2');
  big = join(work, 'big.raw');
  await writeSeededFile(big, BIG, 11);
  small = join(work, 'small.raw');
  await writeSeededFile(small, 2 * MiB, 12);
});
after(() => removeDir(work));

async function packCount(repo: string): Promise<number> {
  const names = await readdir(join(repo, 'packs'), { recursive: true }).catch(() => [] as string[]);
  return names.filter((name) => /[0-9a-f]{64}$/.test(name)).length;
}

/** Waits until `run` stored `count` more packs; false if it ended first. */
async function storedPacks(run: RunningCoffer, repo: string, count: number): Promise<boolean> {
  const already = await packCount(repo);
  return waitFor(async () => (await packCount(repo)) >= already + count, { timeoutMs: 60_000, intervalMs: 5, stop: () => run.child.exitCode !== null || run.child.signalCode !== null });
}

async function assertWhole(repo: string, steady: BackupJson): Promise<VerifyJson> {
  const verify = await coffer(['verify', '-r', repo, '--read-data', '--json'], ENV);
  assertExit(verify, 0);
  const report = JSON.parse(verify.stdout.toString('utf8')) as VerifyJson;
  assert.deepEqual(report.damaged, []);
  const out = join(work, `steady-${Date.now()}.raw`);
  assertExit(await coffer(['restore', '-r', repo, steady.id, '--to', out], ENV), 0);
  await assertSameBytes(out, small, 'the snapshot made before the mishap');
  return report;
}

for (const [signal, name] of [['SIGKILL', 'kill -9'], ['SIGINT', 'Ctrl-C']] as const) {
  test(`format 2, ${name} mid-backup: no snapshot, the repository verifies, the rerun restores, prune removes what the stopped run left`, async () => {
    const repo = join(work, `repo-${signal}`);
    const init = await cofferJson<{ format: number }>(['init', '-r', repo, '--block-size', '64K', '--json'], ENV);
    assert.equal(init.format, 2, 'the default format');
    const steady = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'steady', small], ENV);
    const run = startCoffer(['backup', '-r', repo, '--vm', 'crash', big], { ...ENV, timeoutMs: 120_000 });
    assert.ok(await storedPacks(run, repo, 2), 'the backup ended before it could be stopped');
    run.child.kill(signal);
    const stopped = await run.done;
    if (signal === 'SIGKILL') assert.equal(stopped.signal, 'SIGKILL', describeRun(stopped));
    else assert.equal(stopped.code, 130, describeRun(stopped));

    const listed = await cofferJson<SnapshotJson[]>(['snapshots', '-r', repo], ENV);
    assert.deepEqual(listed.map((s) => s.vm), ['steady']);
    assert.equal((await assertWhole(repo, steady)).snapshots, 1);

    const rerun = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'crash', big], { ...ENV, timeoutMs: 120_000 });
    assert.equal(rerun.parent, null, 'the stopped run left a parent behind');
    const out = join(work, `rerun-${signal}.raw`);
    assertExit(await coffer(['restore', '-r', repo, 'crash:latest', '--to', out], ENV), 0);
    await assertSameBytes(out, big);

    const before = await packCount(repo);
    const pruned = await cofferJson<{ packs: { packsDeleted: number; packsRepacked: number; chunksCopied: number } }>(['prune', '-r', repo, '--json'], ENV);
    assert.ok(pruned.packs.packsDeleted >= 2, `prune deleted ${pruned.packs.packsDeleted} of the stopped run's packs`);
    assert.equal(pruned.packs.chunksCopied, 0, 'the rerun holds every chunk the stopped run had stored');
    assert.equal(await packCount(repo), before - pruned.packs.packsDeleted - pruned.packs.packsRepacked);
    const final = await assertWhole(repo, steady);
    assert.equal(final.snapshots, 2);
    await assertSameBytes(out, big);
  });
}
