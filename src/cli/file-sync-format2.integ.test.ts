/**
 * File snapshots into and out of repository format 2 (packs), through the `coffer` binary, on
 * the shared real tree (file-test-tree.ts: xattrs, ACLs, hard links, a sparse file, symlinks,
 * a FIFO, unicode names): a full and an incremental file backup in a format 2 repository,
 * synced 2 → 1 (another key: trees rewritten), 1 → 2 (another key), 2 → 2 sharing the key
 * (packs copied whole, ids unchanged) and 2 → S3 format 2 (a real Ceph RADOS Gateway,
 * src/testing/ceph-s3.ts); then `tape export` of the format 2 file snapshots → GNU tar →
 * `tape import` into an empty folder. Every copy is restored from the destination and
 * compared with the tree it was taken from (diff -r, stat, getfattr, getfacl, du), and the
 * destinations verified with all their data. (The interrupted sync resumed:
 * src/repo/sync/sync-formats.test.ts.)
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { requireTools, startCephS3, type CephS3 } from '../testing/index.js';
import { assertExit, coffer, cofferJson, makeWorkDir, removeDir, runTool } from './cli-harness.js';
import { assertRestoredSame, makeFileTestTree, sh } from './file-test-tree.js';

const PASS = 'files v2 sync source';
const OTHER = 'files v2 sync other';
const asSource = { env: { COFFER_PASSWORD: PASS }, timeoutMs: 120_000 };
const asOther = { env: { COFFER_PASSWORD: OTHER }, timeoutMs: 120_000 };
const toOther = { env: { COFFER_PASSWORD: PASS, COFFER_TO_PASSWORD: OTHER }, timeoutMs: 120_000 };

interface SyncJson {
  sameKeys: boolean;
  copied: number;
  present: number;
  failed: number;
  skipped: number;
  chunksSent: number;
  chunksReused: number;
  packsCopied: number;
  packsWritten: number;
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
let s3: CephS3 | undefined;

before(async () => {
  await requireTools('setfattr', 'getfattr', 'setfacl', 'getfacl', 'tar');
  work = await makeWorkDir('files-sync-v2');
  repo = join(work, 'repo');
  src = join(work, 'src');
  await makeFileTestTree(src, 6_000_000);
  // Read once now, so that the backups' reads leave the atimes (recorded in the trees) as they are.
  await sh('find . -type f ! -name fifo -exec cat {} + > /dev/null', src);
  assertExit(await coffer(['init', '--format', '2', '-r', repo], asSource), 0);
  sameKeyRepo = join(work, 'same-key');
  await fs.cp(repo, sameKeyRepo, { recursive: true }); // the same key file: the same master key
  first = (await cofferJson<{ id: string }>(['backup', '-r', repo, '--files', src, '--host', 'h1'], asSource)).id;
  firstTree = join(work, 'first-tree');
  assert.equal((await runTool('cp', ['-a', src, firstTree])).code, 0);
  await sh(`echo more >> a; rm -f bash/copyright; echo new > added; dd if=/dev/urandom of=big bs=4096 count=2 seek=500 conv=notrunc 2>/dev/null`, src);
  second = (await cofferJson<{ id: string }>(['backup', '-r', repo, '--files', src, '--host', 'h1'], asSource)).id;
});
after(async () => {
  await s3?.stop();
  if (work !== undefined) await removeDir(work);
});

/** Restores both copies from `dst` and compares them with the trees they were taken from. */
async function assertBothRestore(dst: string, copies: string[], as: { env: Record<string, string>; timeoutMs: number }, label: string): Promise<void> {
  const [copyOfFirst, copyOfSecond] = copies;
  const out2 = join(work, `${label}-out2`);
  assertExit(await coffer(['restore', '-r', dst, copyOfSecond as string, '--to', out2, '--verify'], as), 0);
  await assertRestoredSame(src, join(out2, src));
  const out1 = join(work, `${label}-out1`);
  assertExit(await coffer(['restore', '-r', dst, copyOfFirst as string, '--to', out1], as), 0);
  await assertRestoredSame(firstTree, join(out1, src));
  await Promise.all([fs.rm(out1, { recursive: true, force: true }), fs.rm(out2, { recursive: true, force: true })]);
}

test('format 2 → format 1 → format 2, each with another key: trees rewritten, both snapshots restore with their metadata from each, verify clean, a second sync copies nothing', async () => {
  const loose = join(work, 'loose');
  assertExit(await coffer(['init', '--format', '1', '-r', loose], asOther), 0);
  const out = await cofferJson<SyncJson>(['sync', '-r', repo, '--to', loose], toOther);
  assert.deepEqual([out.sameKeys, out.copied, out.failed, out.skipped], [false, 2, 0, 0], JSON.stringify(out.snapshots));
  assert.ok(out.treesSent >= 4 && out.treesReused >= 1 && out.chunksReused >= 1, `${out.treesSent} trees sent, ${out.treesReused} trees and ${out.chunksReused} chunks reused`);
  await assertBothRestore(loose, out.snapshots.map((s) => s.destination as string), asOther, 'loose');
  assertExit(await coffer(['verify', '-r', loose, '--read-data'], asOther), 0);

  const packed = join(work, 'packed-again');
  assertExit(await coffer(['init', '--format', '2', '-r', packed], asSource), 0);
  const back = await cofferJson<SyncJson>(['sync', '-r', loose, '--to', packed], { ...toOther, env: { COFFER_PASSWORD: OTHER, COFFER_TO_PASSWORD: PASS } });
  assert.deepEqual([back.copied, back.failed], [2, 0], JSON.stringify(back.snapshots));
  assert.ok(back.packsWritten >= 2, `${back.packsWritten} packs: chunks and trees in packs of their own`);
  assert.deepEqual(await fs.readdir(join(packed, 'trees')).catch(() => []), [], 'format 2 keeps trees in packs');
  await assertBothRestore(packed, back.snapshots.map((s) => s.destination as string), asSource, 'packed');
  assertExit(await coffer(['verify', '-r', packed, '--read-data'], asSource), 0);

  const again = await cofferJson<SyncJson>(['sync', '-r', loose, '--to', packed], { ...toOther, env: { COFFER_PASSWORD: OTHER, COFFER_TO_PASSWORD: PASS } });
  assert.deepEqual([again.copied, again.present, again.chunksSent, again.treesSent], [0, 2, 0, 0]);
});

test('format 2 → format 2 sharing the key: the snapshots\' packs copied whole, ids unchanged, both restore', async () => {
  const env = { env: { COFFER_PASSWORD: PASS, COFFER_TO_PASSWORD: PASS }, timeoutMs: 120_000 };
  const report = await cofferJson<SyncJson>(['sync', '-r', repo, '--to', sameKeyRepo, '--vm', 'h1'], env);
  assert.equal(report.sameKeys, true);
  assert.deepEqual(report.snapshots.map((s) => s.destination), [first, second]);
  assert.ok(report.packsCopied >= 2, `${report.packsCopied} packs copied whole (the full's data and trees)`);
  const packs = async (dir: string) => (await sh('find packs -type f | sort', dir)).trim().split('\n');
  const copied = new Set(await packs(sameKeyRepo));
  assert.ok((await packs(repo)).filter((p) => copied.has(p)).length >= report.packsCopied, 'copied packs keep their ids');
  await assertBothRestore(sameKeyRepo, [first, second], asSource, 'same');
  assertExit(await coffer(['verify', '-r', sameKeyRepo, '--read-data'], asSource), 0);
});

test('format 2 → S3 (format 2, another key, a real Ceph gateway): both snapshots restore from the bucket', async () => {
  await requireTools('ceph-mon', 'ceph-osd', 'radosgw');
  s3 = await startCephS3();
  const bucket = await s3.createBucket('files-sync-v2');
  const target = `s3:${s3.endpoint}/${bucket}/repo`;
  const env = { ...s3.env, XDG_CACHE_HOME: join(work, 'cache') };
  assertExit(await coffer(['init', '-r', target], { env: { ...env, COFFER_PASSWORD: OTHER }, timeoutMs: 120_000 }), 0);
  const report = await cofferJson<SyncJson>(['sync', '-r', repo, '--to', target], { env: { ...env, COFFER_PASSWORD: PASS, COFFER_TO_PASSWORD: OTHER }, timeoutMs: 180_000 });
  assert.deepEqual([report.copied, report.failed], [2, 0], JSON.stringify(report.snapshots));
  await assertBothRestore(target, report.snapshots.map((s) => s.destination as string), { env: { ...env, COFFER_PASSWORD: OTHER }, timeoutMs: 180_000 }, 's3');
});

test('tape export of format 2 file snapshots: their packs and a segment on the tape, import into an empty folder restores them', async () => {
  const tape = join(work, 'files.tar');
  assertExit(await coffer(['tape', 'export', '-r', repo, first.slice(0, 8), second.slice(0, 8), '--to', tape], asSource), 0);
  const listing = (await runTool('tar', ['-tf', tape])).stdout;
  assert.match(listing, /^packs\//m);
  assert.match(listing, /^segments\//m);
  const imported = join(work, 'imported');
  const result = await cofferJson<{ createdRepository: boolean; snapshots: { id: string; added: boolean }[] }>(['tape', 'import', '--from', tape, '-r', imported], asSource);
  assert.equal(result.createdRepository, true);
  await assertBothRestore(imported, [first, second], asSource, 'tape');
  assertExit(await coffer(['verify', '-r', imported, '--read-data'], asSource), 0);
  await fs.rm(tape, { force: true });
});
