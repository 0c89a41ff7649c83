/**
 * File snapshots offsite, through the `coffer` binary: `sync` to a repository with another
 * key (trees rewritten with the destination's ids) and to one sharing the key (copied as
 * stored), and `tape export` → GNU tar → `tape import` into an empty repository; each copy
 * restored and compared with the source tree (diff -r, stat, getfattr, getfacl, du).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { requireTools } from '../testing/index.js';
import { assertExit, coffer, cofferJson, makeWorkDir, removeDir, runTool } from './cli-harness.js';
import { assertRestoredSame, makeFileTestTree, sh } from './file-test-tree.js';

const SRC_PASS = 'files offsite source';
const DST_PASS = 'files offsite destination';
const asSource = { env: { COFFER_PASSWORD: SRC_PASS }, timeoutMs: 120_000 };
const asDestination = { env: { COFFER_PASSWORD: DST_PASS }, timeoutMs: 120_000 };

interface SyncJson {
  sameKeys: boolean;
  copied: number;
  present: number;
  failed: number;
  chunksSent: number;
  chunksReused: number;
  treesSent: number;
  treesReused: number;
  snapshots: { source: string; status: string; destination: string | null; error?: { code: string; message: string } }[];
}

let work: string;
let repo: string;
let sameKeyRepo: string;
let src: string;
/** The tree as the first snapshot saw it (a copy), and the two snapshots' ids. */
let firstTree: string;
let first: string;
let second: string;

before(async () => {
  await requireTools('setfattr', 'getfattr', 'setfacl', 'getfacl');
  work = await makeWorkDir('files-offsite');
  repo = join(work, 'repo');
  src = join(work, 'src');
  await makeFileTestTree(src, 6_000_000);
  // Read once now, so that the backup's reads leave the atimes (recorded in the trees) as
  // they are under relatime: directories that do not change then keep their tree ids.
  await sh('find . -type f ! -name fifo -exec cat {} + > /dev/null', src);
  // Format 1 (one object per chunk): this file's tests look at or damage chunk objects; format 2's own are in format2*.integ.test.ts.
  assertExit(await coffer(['init', '--format', '1', '-r', repo], asSource), 0);
  sameKeyRepo = join(work, 'same-key');
  await fs.cp(repo, sameKeyRepo, { recursive: true }); // the same key file: the same master key
  first = (await cofferJson<{ id: string }>(['backup', '-r', repo, '--files', src, '--host', 'h1'], asSource)).id;
  firstTree = join(work, 'first-tree');
  assert.equal((await runTool('cp', ['-a', src, firstTree])).code, 0);
  await sh(`echo more >> a; rm -f bash/copyright; echo new > added; dd if=/dev/urandom of=big bs=4096 count=2 seek=500 conv=notrunc 2>/dev/null`, src);
  second = (await cofferJson<{ id: string }>(['backup', '-r', repo, '--files', src, '--host', 'h1'], asSource)).id;
});
after(() => removeDir(work));

test('sync to a repository with another key: trees rewritten, both snapshots restore with their metadata', async () => {
  const dst = join(work, 'dst');
  assertExit(await coffer(['init', '--format', '1', '-r', dst], asDestination), 0);
  const env = { env: { COFFER_PASSWORD: SRC_PASS, COFFER_TO_PASSWORD: DST_PASS }, timeoutMs: 120_000 };
  const report = await cofferJson<SyncJson>(['sync', '-r', repo, '--to', dst], env);
  assert.equal(report.sameKeys, false);
  assert.deepEqual([report.copied, report.failed], [2, 0], JSON.stringify(report.snapshots));
  assert.ok(report.treesSent >= 4, `${report.treesSent} trees sent`);
  // The second snapshot was walked beside the first's copy: unchanged directories (coreutils)
  // and unchanged files (the sparse one, the docs) were taken from it unread.
  assert.ok(report.treesReused >= 1, `${report.treesReused} trees reused`);
  assert.ok(report.chunksReused >= 1, `${report.chunksReused} chunks reused`);
  const [copyOfFirst, copyOfSecond] = report.snapshots.map((s) => s.destination as string);
  assert.notEqual(copyOfSecond, second, 'another key: another manifest');

  const out2 = join(work, 'sync-out2');
  assertExit(await coffer(['restore', '-r', dst, copyOfSecond as string, '--to', out2, '--verify'], asDestination), 0);
  await assertRestoredSame(src, join(out2, src));
  const out1 = join(work, 'sync-out1');
  assertExit(await coffer(['restore', '-r', dst, copyOfFirst as string, '--to', out1], asDestination), 0);
  await assertRestoredSame(firstTree, join(out1, src));
  assertExit(await coffer(['verify', '-r', dst, '--read-data'], asDestination), 0);

  const again = await cofferJson<SyncJson>(['sync', '-r', repo, '--to', dst], env);
  assert.deepEqual([again.copied, again.present, again.chunksSent, again.treesSent], [0, 2, 0, 0]);
});

test('sync to a repository sharing the key: ids unchanged, trees present are not sent again', async () => {
  const env = { env: { COFFER_PASSWORD: SRC_PASS, COFFER_TO_PASSWORD: SRC_PASS }, timeoutMs: 120_000 };
  const report = await cofferJson<SyncJson>(['sync', '-r', repo, '--to', sameKeyRepo, '--vm', 'h1'], env);
  assert.equal(report.sameKeys, true);
  assert.deepEqual(report.snapshots.map((s) => s.destination), [first, second]);
  const trees = async (dir: string) => (await sh('find trees -type f | sort', dir)).trim();
  assert.equal(await trees(sameKeyRepo), await trees(repo));
  const out = join(work, 'same-out');
  assertExit(await coffer(['restore', '-r', sameKeyRepo, second, '--to', out], asSource), 0);
  await assertRestoredSame(src, join(out, src));
});

test('tape export of file snapshots: GNU tar reads it, import into an empty repository restores them', async () => {
  const tape = join(work, 'files.tar');
  const exported = await cofferJson<{ snapshots: string[]; volumes: unknown[] }>(['tape', 'export', '-r', repo, first.slice(0, 8), second.slice(0, 8), '--to', tape], asSource);
  assert.deepEqual(exported.snapshots, [first, second]);
  const listing = await runTool('tar', ['-tf', tape]);
  assert.equal(listing.code, 0, listing.stderr);
  const names = listing.stdout.trim().split('\n');
  const inRepo = (await sh('find chunks trees -type f | sort', repo)).trim().split('\n');
  // Every tree and chunk of the repository (only these two snapshots wrote any) is on the tape, once.
  assert.deepEqual(names.filter((n) => n.startsWith('trees/') || n.startsWith('chunks/')).sort(), inRepo);
  const tapeList = await cofferJson<{ trees: number; final: boolean }[]>(['tape', 'list', '--from', tape]);
  assert.equal(tapeList[0]?.trees, inRepo.filter((n) => n.startsWith('trees/')).length);

  const imported = join(work, 'imported');
  const result = await cofferJson<{ createdRepository: boolean; snapshots: { id: string; added: boolean }[] }>(['tape', 'import', '--from', tape, '-r', imported], asSource);
  assert.equal(result.createdRepository, true);
  assert.deepEqual(result.snapshots.map((s) => s.id), [first, second]);
  const out = join(work, 'tape-out');
  assertExit(await coffer(['restore', '-r', imported, second, '--to', out, '--verify'], asSource), 0);
  await assertRestoredSame(src, join(out, src));
  const out1 = join(work, 'tape-out1');
  assertExit(await coffer(['restore', '-r', imported, first, '--to', out1], asSource), 0);
  await assertRestoredSame(firstTree, join(out1, src));

  // `tar -x` of the volume is a repository too (docs/tape-format.md §2).
  const extracted = join(work, 'extracted');
  await fs.mkdir(extracted);
  assert.equal((await runTool('tar', ['-xf', tape, '-C', extracted])).code, 0);
  assertExit(await coffer(['verify', '-r', extracted, '--read-data'], asSource), 0);
});
