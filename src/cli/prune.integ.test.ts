/**
 * `coffer prune` and `forget --prune` as separate processes: space comes back, kept snapshots
 * still restore byte for byte, a prune started while a backup runs waits for it (the running
 * backup loses nothing), and a prune killed at any moment leaves a repository that verifies
 * and a prune that simply runs again.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { seededBytes, seededRandom, withDeadline } from '../testing/index.js';
import { assertExit, assertSameBytes, chunkIds, coffer, cofferJson, makeWorkDir, removeDir, startCoffer, waitFor } from './cli-harness.js';

const env = { COFFER_PASSWORD: 'prune test' };
const opts = { env, timeoutMs: 180_000 };
const MiB = 1 << 20;
let work: string;

before(async () => {
  work = await makeWorkDir('prune');
});
after(() => removeDir(work));

interface PruneJson {
  chunksRemoved: number;
  indexPagesRemoved: number;
  bytesFreed: number;
  chunksKept: number;
}

/** A disk whose `changed` MiB at the start differ per version; the rest is shared. */
async function diskVersion(name: string, version: number, sizeMiB = 8, changedMiB = 2): Promise<string> {
  const file = `${work}/${name}-${version}.raw`;
  await fs.writeFile(file, Buffer.concat([seededBytes(1000 + version, changedMiB * MiB), seededBytes(1, (sizeMiB - changedMiB) * MiB)]));
  return file;
}

test('forget --prune gives the space back; what is kept still restores byte for byte', async () => {
  const repo = `${work}/repo1`;
  // Format 1 (one object per chunk): this file's tests look at or damage chunk objects; format 2's own are in format2*.integ.test.ts.
  assertExit(await coffer(['init', '--format', '1', '-r', repo], opts), 0);
  const disks: string[] = [];
  for (let v = 0; v < 4; v++) {
    disks.push(await diskVersion('hist', v));
    assertExit(await coffer(['backup', '-r', repo, '--vm', 'hist', '--time', `2026-11-2${v}T00:00:00Z`, disks[v] as string], opts), 0);
  }
  const before = (await chunkIds(repo)).length;
  const result = await cofferJson<{ removed: unknown[]; prune: PruneJson }>(['forget', '-r', repo, '--keep-last', '2', '--prune'], opts);
  assert.equal(result.removed.length, 2);
  // Each version had 2 MiB of its own: 8 chunks of 256 KiB each, for the two forgotten.
  assert.equal(result.prune.chunksRemoved, 16);
  assert.ok(result.prune.indexPagesRemoved >= 1);
  assert.ok(result.prune.bytesFreed > 3 * MiB, `${result.prune.bytesFreed} bytes freed`);
  assert.equal((await chunkIds(repo)).length, before - 16);
  assertExit(await coffer(['verify', '-r', repo, '--read-data'], opts), 0);
  for (const [i, ref] of ['hist:latest', 'latest'].entries()) {
    const out = `${work}/restored-${i}.raw`;
    assertExit(await coffer(['restore', '-r', repo, ref, '--to', out], opts), 0);
    await assertSameBytes(out, disks[3] as string);
  }
  const text = await coffer(['prune', '-r', repo], opts);
  assertExit(text, 0);
  assert.match(text.stdout.toString('utf8'), /removed 0 chunk\(s\)/);
  // In text, forget's closing line says the prune that follows removes the data (it said the data stayed until a prune).
  const both = await coffer(['forget', '-r', repo, '--keep-last', '1', '--prune'], opts);
  assertExit(both, 0);
  assert.match(both.stdout.toString('utf8'), /^removed 1 snapshot\(s\), kept 1, in 1 VM\(s\); the prune below removes their data$/m);
  assert.doesNotMatch(both.stdout.toString('utf8'), /until a prune/);
});

test('a prune started while a backup runs waits for it; the backup loses nothing', async () => {
  const repo = `${work}/repo2`;
  assertExit(await coffer(['init', '--format', '1', '-r', repo], opts), 0);
  const old = await diskVersion('busy', 0, 16, 16);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'old', old], opts), 0);
  assertExit(await coffer(['forget', '-r', repo, 'old:latest'], opts), 0);
  const big = `${work}/big.raw`;
  await fs.writeFile(big, seededBytes(77, 160 * MiB)); // long enough to overlap
  const backup = startCoffer(['backup', '-r', repo, '--vm', 'big', big], opts);
  const leased = await waitFor(async () => (await fs.readdir(`${repo}/leases`).catch(() => [])).length > 0, { timeoutMs: 60_000, intervalMs: 20 });
  assert.ok(leased, 'the backup took its lease');
  const prune = await coffer(['prune', '-r', repo, '--json'], opts);
  const backupResult = await backup.done;
  assertExit(backupResult, 0);
  assertExit(prune, 0);
  assert.match(prune.stderr, /"waiting":"backup on /, 'the prune started while the backup held its lease, and waited');
  const report = JSON.parse(prune.stdout.toString('utf8')) as PruneJson;
  assert.equal(report.chunksRemoved, 64, 'exactly the forgotten snapshot\'s 16 MiB');
  assertExit(await coffer(['verify', '-r', repo, '--read-data'], opts), 0);
  const out = `${work}/big-restored.raw`;
  assertExit(await coffer(['restore', '-r', repo, 'big:latest', '--to', out], opts), 0);
  await assertSameBytes(out, big);
  await fs.rm(out);
  await fs.rm(big);
});

test('a prune killed at random moments leaves a repository that verifies; the next prune finishes the job', async () => {
  const repo = `${work}/repo3`;
  assertExit(await coffer(['init', '--format', '1', '-r', repo], opts), 0);
  const keep = await diskVersion('crash', 0, 8, 8);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'keep', keep], opts), 0);
  const random = seededRandom(20261126);
  let kills = 0;
  // Kill somewhere in the first 90% of what a prune is expected to take. The first guess is a
  // dry run's time (opening the repository, marking, listing: a real prune takes at least
  // that long); a prune that still finished first teaches how long a whole one took, so the
  // next round aims inside that. Rounds go on until three prunes died mid-way: on a loaded
  // machine the times move, the count of kills does not.
  const started = Date.now();
  assertExit(await coffer(['prune', '-r', repo, '--dry-run'], opts), 0);
  let expectedMs = Date.now() - started;
  await withDeadline('the prune crash loop', (async () => {
    for (let round = 0; round < 10 && kills < 3; round++) {
      // New garbage each round: a snapshot of 8 MiB of its own, then forgotten.
      const gone = await diskVersion('crash', round + 1, 8, 8);
      assertExit(await coffer(['backup', '-r', repo, '--vm', 'gone', gone], opts), 0);
      assertExit(await coffer(['forget', '-r', repo, 'gone:latest'], opts), 0);
      const startedAt = Date.now();
      const run = startCoffer(['prune', '-r', repo], opts);
      const endedAt = run.done.then(() => Date.now());
      await new Promise((resolve) => setTimeout(resolve, Math.floor((0.2 + 0.7 * random()) * expectedMs)));
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
      const result = await run.done;
      if (result.signal === 'SIGKILL') kills++;
      else {
        assertExit(result, 0);
        expectedMs = Math.max(20, (await endedAt) - startedAt);
      }
      assertExit(await coffer(['verify', '-r', repo, '--read-data'], opts), 0);
      await fs.rm(gone);
    }
  })(), 300_000);
  const final = await cofferJson<PruneJson>(['prune', '-r', repo], opts);
  assert.equal(final.chunksKept, 32, 'only the kept snapshot\'s chunks remain');
  assert.equal((await chunkIds(repo)).length, 32);
  const out = `${work}/keep-restored.raw`;
  assertExit(await coffer(['restore', '-r', repo, 'keep:latest', '--to', out], opts), 0);
  await assertSameBytes(out, keep);
  assert.ok(kills >= 3, `only ${kills} of 10 prunes were killed mid-way`);
});
