/**
 * `coffer prune` on a repository of format 2 (packs) through the `coffer` binary: the dry run
 * prints the plan and changes nothing, the prune deletes and repacks packs and reports it
 * (exit 0), what is kept restores byte for byte and `verify --read-data` is clean; a prune
 * killed with SIGKILL while it repacks leaves a repository that verifies and restores, and the
 * next prune finishes.
 */
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { seededBytes, seededRandom } from '../testing/index.js';
import { assertExit, assertOneLineError, assertSameBytes, coffer, cofferJson, makeWorkDir, removeDir, startCoffer, type BackupJson } from './cli-harness.js';

const KiB = 1024;
const env = { COFFER_PASSWORD: 'pw' };
const opts = { env, timeoutMs: 120_000 };
let work: string;

before(async () => {
  work = await makeWorkDir('prune-format2');
});
after(() => removeDir(work));

async function packs(repo: string): Promise<string[]> {
  return (await readdir(join(repo, 'packs'), { recursive: true })).filter((name) => /[0-9a-f]{64}$/.test(name)).sort();
}

test('coffer prune on format 2: --dry-run prints the plan, then packs are deleted and repacked, exit 0, and the kept snapshot restores', async () => {
  const repo = join(work, 'repo');
  const first = join(work, 'first.raw');
  const second = join(work, 'second.raw');
  const other = join(work, 'other.raw');
  const shared = seededBytes(31, 1536 * KiB);
  await writeFile(first, Buffer.concat([seededBytes(32, 512 * KiB), shared]));
  await writeFile(second, Buffer.concat([seededBytes(33, 512 * KiB), shared]));
  await writeFile(other, seededBytes(34, 512 * KiB));
  assertExit(await coffer(['init', '-r', repo, '--format', '2', '--block-size', '64K'], opts), 0);
  const old = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'vm', first], opts);
  await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'vm', second], opts);
  const gone = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'gone', other], opts);
  assertExit(await coffer(['forget', '-r', repo, old.id, gone.id], opts), 0);
  const before = await packs(repo);
  assert.equal(before.length, 3);

  const refused = await coffer(['prune', '-r', repo, '--repack-threshold', '0'], opts);
  assertExit(refused, 2);
  assert.match(assertOneLineError(refused), /--repack-threshold 0: give a percentage/);

  const dry = await coffer(['prune', '-r', repo, '--dry-run'], opts);
  assertExit(dry, 0);
  assert.match(dry.stdout.toString(), /packs: 3 before; would delete 1, would repack 1, kept 1/);
  assert.deepEqual(await packs(repo), before);

  const pruned = await coffer(['prune', '-r', repo], opts);
  assertExit(pruned, 0);
  const text = pruned.stdout.toString();
  assert.match(text, /packs: 3 before; deleted 1, repacked 1, kept 1/);
  assert.match(text, /wrote 1 new pack\(s\): 24 chunk\(s\)/);
  assert.equal((await packs(repo)).length, 2);

  const out = join(work, 'restored.raw');
  assertExit(await coffer(['restore', '-r', repo, 'vm:latest', '--to', out], opts), 0);
  await assertSameBytes(out, second);
  assertExit(await coffer(['verify', '-r', repo, '--read-data'], opts), 0);
  const again = await cofferJson<{ packs: { packsDeleted: number; packsRepacked: number } }>(['prune', '-r', repo, '--json'], opts);
  assert.deepEqual([again.packs.packsDeleted, again.packs.packsRepacked], [0, 0]);
});

test('coffer prune on format 2 killed with SIGKILL at random moments: verify --read-data passes, the kept snapshot restores, the next prune finishes', async (t) => {
  const repo = join(work, 'crash');
  const random = seededRandom(2611);
  const shared = seededBytes(40, 1536 * KiB);
  const version = async (round: number): Promise<string> => {
    const path = join(work, `crash-${round}.raw`);
    await writeFile(path, Buffer.concat([seededBytes(400 + round, 512 * KiB), shared]));
    return path;
  };
  assertExit(await coffer(['init', '-r', repo, '--format', '2', '--block-size', '64K'], opts), 0);
  let previous = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'vm', await version(0)], opts);
  let killed = 0;
  let latest = '';
  for (let round = 1; round <= 2; round++) {
    // Each round: a new version (a pack of 8 new blocks), the previous one forgotten (its
    // first pack becomes 25 % unused: repacked; older packs entirely unused: deleted).
    latest = await version(round);
    const current = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'vm', latest], opts);
    assertExit(await coffer(['forget', '-r', repo, previous.id], opts), 0);
    previous = current;
    const started = Date.now();
    assertExit(await coffer(['prune', '-r', repo, '--dry-run'], opts), 0);
    const dryRunMs = Date.now() - started;
    const run = startCoffer(['prune', '-r', repo, '--wait', '0'], opts);
    await new Promise((resolve) => setTimeout(resolve, Math.floor((0.5 + 0.6 * random()) * dryRunMs)));
    if (run.child.exitCode === null) {
      run.child.kill('SIGKILL');
      killed++;
    }
    await run.done;
    assertExit(await coffer(['verify', '-r', repo, '--read-data'], opts), 0);
    const out = join(work, `crash-restored-${round}.raw`);
    assertExit(await coffer(['restore', '-r', repo, 'vm:latest', '--to', out], opts), 0);
    await assertSameBytes(out, latest);
  }
  const final = await cofferJson<{ packs: { packsRepacked: number; unreadable: unknown[] } }>(['prune', '-r', repo, '--json'], opts);
  assert.deepEqual(final.packs.unreadable, []);
  // What stays: the kept version's 8 own blocks and the 24 shared ones, once each.
  assertExit(await coffer(['verify', '-r', repo, '--read-data'], opts), 0);
  // The packs' trailers (read by repair --index) hold each used chunk once: nothing lost, no duplicate.
  const index = await cofferJson<{ chunks: number; unreadable: unknown[] }>(['repair', '-r', repo, '--index', '--json'], opts);
  assert.deepEqual([index.chunks, index.unreadable.length], [32, 0]);
  const out = join(work, 'crash-restored-final.raw');
  assertExit(await coffer(['restore', '-r', repo, 'vm:latest', '--to', out], opts), 0);
  await assertSameBytes(out, latest);
  t.diagnostic(`${killed} of 2 prunes killed before they ended`);
});
