/**
 * File-level backup into a format 2 repository (packs), end to end through the `coffer`
 * binary on the shared real tree (file-test-tree.ts: xattrs, ACLs, hard links, a sparse file,
 * symlinks, a FIFO, unicode names): a full backup stores its chunks and trees in packs (no
 * chunk or tree objects), restores with content and metadata (`diff -r`, `getfattr`, `getfacl`, `stat`);
 * an incremental reads and stores only what changed; `files ls/cat`, `stats`, and
 * `verify --read-data` clean; without the index segments the chunks cannot be found (verify
 * says so) until `repair --index` rebuilds them.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { basename, join } from 'node:path';
import { after, before, test } from 'node:test';
import { mountSmallFilesystem, requireTools } from '../testing/index.js';
import { assertExit, coffer, makeWorkDir, removeDir } from './cli-harness.js';
import { assertRestoredSame, makeFileTestTree, sh } from './file-test-tree.js';

const env = { COFFER_PASSWORD: 'files v2 test' };
const opts = { env, timeoutMs: 120_000 };
let work: string;
let repo: string;
let src: string;

interface Json {
  id: string;
  bytesRead: number;
  bytesNew: number;
  bytesStored: number;
  warnings: unknown[];
}

async function backup(args: string[]): Promise<Json> {
  const result = await coffer(['backup', '-r', repo, '--json', ...args], opts);
  assertExit(result, 0);
  return JSON.parse(result.stdout.toString()) as Json;
}

/** Files under `dir` of the repository and their bytes. */
async function stored(dir: string): Promise<{ files: number; bytes: number }> {
  const names = await fs.readdir(join(repo, dir), { recursive: true }).catch(() => [] as string[]);
  let files = 0;
  let bytes = 0;
  for (const name of names) {
    const stat = await fs.stat(join(repo, dir, name));
    if (!stat.isFile()) continue;
    files++;
    bytes += stat.size;
  }
  return { files, bytes };
}

before(async () => {
  await requireTools('setfattr', 'getfattr', 'setfacl', 'getfacl');
  work = await makeWorkDir('files-v2');
  repo = join(work, 'repo');
  src = join(work, 'src');
  await makeFileTestTree(src, 6_000_000);
  assertExit(await coffer(['init', '-r', repo, '--format', '2'], opts), 0);
});
after(() => removeDir(work));

test('format 2: full and incremental file backups in packs, restored with content and metadata', async () => {
  const first = await backup(['--files', src, '--host', 'h2']);
  assert.equal(first.warnings.length, 0);
  assert.deepEqual(await stored('chunks'), { files: 0, bytes: 0 });
  assert.deepEqual(await stored('trees'), { files: 0, bytes: 0 });
  const packs = await stored('packs');
  // The ≈400 small files and the 6 MB file's chunks fill one pack (a pack closes at 8 MiB),
  // the trees another; each pack writer writes its index segment.
  assert.equal(packs.files, 2);
  assert.ok(packs.bytes > 6_000_000 && packs.bytes < 8_000_000, `packs hold ${packs.bytes} bytes`);
  assert.equal((await stored('segments')).files, 2);
  const out1 = join(work, 'out1');
  assertExit(await coffer(['restore', '-r', repo, first.id, '--to', out1, '--verify'], opts), 0);
  await assertRestoredSame(src, join(out1, src));

  // An incremental: one file appended to, one added; the rest unread and not stored again.
  await sh(`echo more >> '${src}/a'; echo new > '${src}/added'; rm '${src}/bash/copyright' 2>/dev/null || true`, work);
  const second = await backup(['--files', src, '--host', 'h2']);
  assert.ok(second.bytesRead < 100, `incremental read ${second.bytesRead} bytes`);
  assert.equal(second.bytesNew, 'hello\nmore\n'.length + 'new\n'.length);
  // Two small packs: the two new files' chunks, and the trees of the three directories that changed (/, …, src, bash).
  const packsAfter = await stored('packs');
  assert.equal(packsAfter.files, 4);
  assert.ok(packsAfter.bytes - packs.bytes < 16_000, `the incremental's packs hold ${packsAfter.bytes - packs.bytes} bytes`);
  const out2 = join(work, 'out2');
  assertExit(await coffer(['restore', '-r', repo, second.id, '--to', out2], opts), 0);
  await assertRestoredSame(src, join(out2, src));
  // The first snapshot still restores as the tree was.
  assert.equal(await fs.readFile(join(out1, src, 'a'), 'utf8'), 'hello\n');

  // files ls / cat read trees and packed chunks.
  const ls = await coffer(['files', '-r', repo, second.id, 'ls', `${src}/sub`], opts);
  assertExit(ls, 0);
  assert.deepEqual(ls.stdout.toString().trim().split('\n').sort(), ['a-link', 'sym']);
  const cat = await coffer(['files', '-r', repo, second.id, 'cat', `${src}/a`], opts);
  assert.equal(cat.stdout.toString(), 'hello\nmore\n');
  const big = await coffer(['files', '-r', repo, second.id, 'cat', `${src}/big`], opts);
  assert.ok(big.stdout.equals(await fs.readFile(join(src, 'big'))));
  // files get: a file with data, and the whole tree, from the incremental (its unchanged subtrees come from the full).
  const got = join(work, 'got');
  assertExit(await coffer(['files', '-r', repo, second.id, 'get', `${src}/big`, '--to', got], opts), 0);
  assert.ok((await fs.readFile(join(got, 'big'))).equals(await fs.readFile(join(src, 'big'))), 'files get of a file with data');
  // Again onto what the first get wrote: the target refuses (exit 4, as a restore), and --overwrite replaces.
  const again = await coffer(['files', '-r', repo, second.id, 'get', `${src}/big`, '--to', got], opts);
  assertExit(again, 4);
  assert.match(again.stderr.toString(), /big: it exists already \(--overwrite replaces files\)/);
  assertExit(await coffer(['files', '-r', repo, second.id, 'get', `${src}/big`, '--to', got, '--overwrite'], opts), 0);
  const gotTree = join(work, 'got-tree');
  assertExit(await coffer(['files', '-r', repo, second.id, 'get', src, '--to', gotTree], opts), 0);
  assert.equal(await fs.readFile(join(gotTree, basename(src), 'a'), 'utf8'), 'hello\nmore\n');
  assert.ok((await fs.readFile(join(gotTree, basename(src), 'big'))).equals(await fs.readFile(join(src, 'big'))));
  // A restore into something that is not a folder: exit 4 with the reason, not an internal error.
  const aFile = join(work, 'a-file');
  await fs.writeFile(aFile, 'x');
  for (const to of [aFile, join(aFile, 'sub')]) {
    const refused = await coffer(['restore', '-r', repo, second.id, '--to', to], opts);
    assertExit(refused, 4);
    assert.match(refused.stderr.toString(), /cannot write .*a-file.*: (it exists and is not a directory|a part of the path is not a directory)/);
  }

  // A full target ends the restore with exit 5; the file being written when it filled is removed.
  const small = join(work, 'small-target');
  const unmount = await mountSmallFilesystem(small, 3 * 1024 * 1024);
  try {
    const full = await coffer(['restore', '-r', repo, second.id, '--to', join(small, 'r')], opts);
    assertExit(full, 5);
    assert.match(full.stderr.toString(), /no space left on the target writing .*: the restore stopped there/);
    const left = (await fs.readdir(small, { recursive: true })).map(String);
    assert.ok(!left.some((name) => basename(name) === 'big'), `the big file's partial copy is gone: ${left.join(', ')}`);
  } finally {
    await unmount();
  }

  const stats = await coffer(['stats', '-r', repo, '--json'], opts);
  assertExit(stats, 0);
  assert.ok((JSON.parse(stats.stdout.toString()) as { chunks: number }).chunks > 10);
});

test('format 2: verify --read-data checks file chunks found through the index segments', async () => {
  const verified = await coffer(['verify', '-r', repo, '--read-data'], opts);
  assertExit(verified, 0);
  assert.match(verified.stdout.toString(), /read and checked (\d+) chunks/);
  const checked = Number(/read and checked (\d+) chunks/.exec(verified.stdout.toString())?.[1]);
  assert.ok(checked > 10, `${checked} chunks checked`);

  // A damaged frame in the data pack: verify --read-data names the files it touches.
  const dataPack = await largestPack();
  const original = await fs.readFile(dataPack);
  const damaged = Buffer.from(original);
  const middle = Math.floor(damaged.length / 2);
  damaged.writeUInt8(damaged.readUInt8(middle) ^ 0xff, middle);
  await fs.writeFile(dataPack, damaged);
  const corrupt = await coffer(['verify', '-r', repo, '--read-data'], opts);
  assertExit(corrupt, 13);
  assert.match(corrupt.stdout.toString(), new RegExp(`AFFECTED snapshot .* disk ${src}/`));
  assert.doesNotMatch(corrupt.stdout.toString(), /cannot be named/);
  // The pack put back whole (as from another copy of the storage): verify set its chunks
  // aside, and prune, finding every copy readable again, retires the markers.
  await fs.writeFile(dataPack, original);
  const pruned = JSON.parse((await coffer(['prune', '-r', repo, '--json'], opts)).stdout.toString()) as { quarantineRetired: number };
  assert.ok(pruned.quarantineRetired > 0, JSON.stringify(pruned));
  assert.deepEqual(await fs.readdir(join(repo, 'quarantine')).catch(() => []), []);

  // Without the segments neither the trees nor the chunks of a file snapshot can be found:
  // verify says so; `repair --index` rebuilds them from the packs' trailers.
  const segments = join(repo, 'segments');
  const aside = join(work, 'segments-aside');
  await fs.rename(segments, aside);
  await fs.mkdir(segments);
  const lost = await coffer(['verify', '-r', repo], opts);
  assertExit(lost, 13);
  assert.match(lost.stdout.toString(), /DAMAGED file tree .*no index segment names it/);
  await fs.rm(join(repo, 'quarantine'), { recursive: true, force: true });
  assertExit(await coffer(['repair', '-r', repo, '--index'], opts), 0);
  assertExit(await coffer(['verify', '-r', repo, '--read-data'], opts), 0);
  await fs.rm(aside, { recursive: true });
});

/** The path of the largest pack (the first backup's file data). */
async function largestPack(): Promise<string> {
  let best = { path: '', size: -1 };
  for (const name of await fs.readdir(join(repo, 'packs'), { recursive: true })) {
    const path = join(repo, 'packs', name);
    const stat = await fs.stat(path);
    if (stat.isFile() && stat.size > best.size) best = { path, size: stat.size };
  }
  return best.path;
}

test('format 2: prune after forgetting a file snapshot repacks data and tree packs; the other snapshot restores and verifies', async () => {
  const snapshots = JSON.parse((await coffer(['snapshots', '-r', repo, '--json'], opts)).stdout.toString()) as { id: string; time: string }[];
  assert.equal(snapshots.length, 2);
  const [older, newer] = [...snapshots].sort((a, b) => a.time.localeCompare(b.time)).map((snapshot) => snapshot.id) as [string, string];
  assertExit(await coffer(['forget', '-r', repo, older], opts), 0);
  // Any unused byte repacks its pack: the tree pack loses the first snapshot's root trees.
  const pruned = await coffer(['prune', '-r', repo, '--json', '--repack-threshold', '0.01'], opts);
  assertExit(pruned, 0);
  const report = JSON.parse(pruned.stdout.toString()) as { packs: { packsRepacked: number; packsDeleted: number } };
  assert.ok(report.packs.packsRepacked + report.packs.packsDeleted >= 1, JSON.stringify(report.packs));
  const out = join(work, 'out-after-prune');
  assertExit(await coffer(['restore', '-r', repo, newer, '--to', out, '--verify'], opts), 0);
  await assertRestoredSame(src, join(out, src));
  assertExit(await coffer(['verify', '-r', repo, '--read-data'], opts), 0);
});
