/**
 * `coffer verify --read-data-subset` and `--since`: full reads spread over several runs, what
 * each run read recorded in the repository, and each snapshot's verified share shown by
 * `coffer snapshots`.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { seededBytes } from '../testing/index.js';
import { assertExit, assertOneLineError, chunkIds, chunkPath, coffer, cofferJson, makeWorkDir, removeDir } from './cli-harness.js';

const env = { COFFER_PASSWORD: 'verify subset test' };
let work: string;
let repo: string;

interface VerifyOut {
  ok: boolean;
  chunksReferenced: number;
  chunksRead: number;
  chunksSkipped: number;
  damaged: { id: string }[];
  verification: { snapshot: string; chunks: number; verifiedChunks: number; fullyVerifiedAt: string | null }[];
}
interface SnapshotOut {
  id: string;
  verification?: { chunks: number; verifiedChunks: number; fullyVerifiedAt: string | null };
}

before(async () => {
  work = await makeWorkDir('verify-subset');
  repo = `${work}/repo`;
  // Format 1 (one object per chunk): this file's tests look at or damage chunk objects; format 2's own are in format2*.integ.test.ts.
  assertExit(await coffer(['init', '--format', '1', '-r', repo, '--block-size', '64K'], { env, timeoutMs: 120_000 }), 0);
  const disk = `${work}/disk.raw`;
  await fs.writeFile(disk, seededBytes(7, 6 << 20)); // 96 chunks of 64 KiB, all distinct
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'vm1', disk], { env, timeoutMs: 120_000 }), 0);
});
after(() => removeDir(work));

test('three slices read every chunk once; then the snapshot counts as fully verified', async () => {
  const total = (await chunkIds(repo)).length;
  let read = 0;
  for (const slice of ['1/3', '2/3', '3/3']) {
    const out = await cofferJson<VerifyOut>(['verify', '-r', repo, '--read-data-subset', slice], { env, timeoutMs: 120_000 });
    assert.equal(out.ok, true);
    assert.ok(out.chunksRead > 0 && out.chunksRead < total, `slice ${slice} read ${out.chunksRead} of ${total}`);
    read += out.chunksRead;
    const v = out.verification[0];
    assert.equal(v?.verifiedChunks, read, `after ${slice}`);
    assert.equal(v?.fullyVerifiedAt === null, slice !== '3/3', `after ${slice}: ${v?.fullyVerifiedAt}`);
  }
  assert.equal(read, total, 'the slices partition the chunks');
  const [snapshot] = await cofferJson<SnapshotOut[]>(['snapshots', '-r', repo], { env, timeoutMs: 120_000 });
  assert.equal(snapshot?.verification?.verifiedChunks, total);
  assert.notEqual(snapshot?.verification?.fullyVerifiedAt, null);
  const table = await coffer(['snapshots', '-r', repo], { env, timeoutMs: 120_000 });
  assert.match(table.stdout.toString('utf8'), /Verified[\s\S]*\d{4}-\d\d-\d\d/);
});

test('--since skips what a recent run read; a sample reads about its share', async () => {
  const total = (await chunkIds(repo)).length;
  const skipped = await cofferJson<VerifyOut>(['verify', '-r', repo, '--read-data', '--since', '1d'], { env, timeoutMs: 120_000 });
  assert.equal(skipped.chunksRead, 0);
  assert.equal(skipped.chunksSkipped, total);
  assert.notEqual(skipped.verification[0]?.fullyVerifiedAt, null, 'skipping keeps the snapshot verified');
  const sample = await cofferJson<VerifyOut>(['verify', '-r', repo, '--read-data-subset', '50%'], { env, timeoutMs: 120_000 });
  assert.ok(sample.chunksRead > total * 0.2 && sample.chunksRead < total * 0.8, `50% read ${sample.chunksRead} of ${total}`);
});

test('a chunk corrupted after it was verified: --since trusts the log, a full read finds it', async () => {
  const ids = await chunkIds(repo);
  const victim = ids[5] as string;
  const file = chunkPath(repo, victim);
  const bytes = await fs.readFile(file);
  bytes.writeUInt8(bytes.readUInt8(40) ^ 1, 40);
  await fs.writeFile(file, bytes);
  // Recently read: --since trusts the log, so the damage is not seen (this is what --since means).
  const trusting = await cofferJson<VerifyOut>(['verify', '-r', repo, '--read-data', '--since', '1d'], { env, timeoutMs: 120_000 });
  assert.equal(trusting.damaged.length, 0);
  // A full read finds it, and the snapshot is no longer fully verified.
  const full = await coffer(['verify', '-r', repo, '--read-data', '--json'], { env, timeoutMs: 120_000 });
  assertExit(full, 13);
  const out = JSON.parse(full.stdout.toString('utf8')) as VerifyOut;
  assert.deepEqual(out.damaged.map((d) => d.id), [victim]);
  assert.equal(out.verification[0]?.fullyVerifiedAt, null);
  assert.equal(out.verification[0]?.verifiedChunks, ids.length - 1);
});

test('bad subsets and --since without reading are usage errors', async () => {
  for (const args of [['--read-data-subset', '0/3'], ['--read-data-subset', '4/3'], ['--read-data-subset', '150%'], ['--read-data-subset', 'half'], ['--since', '7d'], ['--read-data', '--since', 'soon']]) {
    const result = await coffer(['verify', '-r', repo, ...args], { env, timeoutMs: 60_000 });
    assertExit(result, 2);
    assertOneLineError(result);
  }
});
