/**
 * Unchanged subtrees against real trees and real repositories: the digests listed ahead of
 * an incremental are the ones the walk recorded; an unchanged subtree is its parent's trees,
 * none of them read (format 1, where a tree is an object of its own the test can remove); a
 * change anywhere below, other excludes, hard links and access times are handled as a walk
 * of every directory handles them.
 */
import assert from 'node:assert/strict';
import { link, lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { compareNames, getFileTree, initRepository, LocalBackend, openRepository, type Repository, type Snapshot, type TreeEntry } from '../../repo/index.js';
import { byUtf8Bytes, Excludes, ListingPrefetch, readAccountNames } from '../../source/index.js';
import { backupFiles } from './backup-files.js';

let work: string;
let repo: Repository;
let repoRoot: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'coffer-subtrees-'));
  repoRoot = join(work, 'repo');
  // Format 1: every tree an object under trees/, which a test removes to prove it is not read.
  await initRepository(new LocalBackend(repoRoot), { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * 1024, format: 1 });
  repo = await openRepository(new LocalBackend(repoRoot), { passphrase: 'pw', threads: 1 });
});
after(async () => {
  await repo?.close();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

/** The entry at absolute `path` in the snapshot. */
async function entryAt(snapshot: Snapshot, path: string): Promise<TreeEntry> {
  let tree = snapshot.files?.tree as string;
  const names = path.split('/').filter(Boolean);
  for (const [i, name] of names.entries()) {
    const entry = (await getFileTree(repo, tree)).entries.find((e) => e.name === name);
    assert.ok(entry !== undefined, `${name} in the snapshot`);
    if (i === names.length - 1) return entry;
    tree = entry.tree as string;
  }
  throw new Error('empty path');
}

/** Every directory entry below `path` in the snapshot (path → entry), `path`'s own included. */
async function directoriesBelow(snapshot: Snapshot, path: string): Promise<Map<string, TreeEntry>> {
  const found = new Map<string, TreeEntry>();
  const walk = async (at: string, entry: TreeEntry): Promise<void> => {
    found.set(at, entry);
    for (const child of (await getFileTree(repo, entry.tree as string)).entries) if (child.type === 'directory') await walk(`${at}/${child.name}`, child);
  };
  await walk(path, await entryAt(snapshot, path));
  return found;
}

/** A tree three levels deep: files, an empty directory, a symlink, and `links/` with a hard link. */
async function makeTree(dir: string): Promise<void> {
  for (const sub of ['a/b/c', 'a/d', 'e', 'empty', 'links/deep']) await mkdir(join(dir, sub), { recursive: true });
  for (const [i, file] of ['a/b/c/f1', 'a/b/f2', 'a/d/f3', 'e/f4', 'f5', 'links/deep/f6'].entries()) await writeFile(join(dir, file), `file ${i}\n`.repeat(i + 1));
  await symlink('../f5', join(dir, 'e', 'to-f5'));
  await writeFile(join(dir, 'links', 'x'), 'two names\n');
  await link(join(dir, 'links', 'x'), join(dir, 'links', 'y'));
}

/** Removes the tree objects of every directory below `path` in the snapshot but those on the way to `keep` (absolute paths). */
async function removeTreesBelow(snapshot: Snapshot, path: string, keep: readonly string[] = []): Promise<number> {
  let removed = 0;
  for (const [at, entry] of await directoriesBelow(snapshot, path)) {
    if (at === path || keep.some((k) => k === at || k.startsWith(`${at}/`))) continue;
    const id = entry.tree as string;
    await rm(join(repoRoot, 'trees', id.slice(0, 2), id), { force: true });
    removed++;
  }
  return removed;
}

test('the digests listed before an incremental are those the walk recorded; none where a hard link, a refused name or a mount point is below', async () => {
  const dir = join(work, 'recorded');
  await makeTree(dir);
  const excludes = await Excludes.compile({ patterns: ['d'] });
  const full = await backupFiles(repo, { host: 'recorded', paths: [dir], excludes });
  const recorded = await directoriesBelow(full, dir);
  assert.ok(!recorded.has(`${dir}/a/d`), 'the excluded directory is not in the snapshot');
  for (const at of [`${dir}/a/b/c`, `${dir}/a/b`, `${dir}/a`, `${dir}/e`, `${dir}/empty`, `${dir}/links/deep`]) {
    assert.match(recorded.get(at)?.subtree?.[0] ?? '', /^[0-9a-f]{32}$/, `${at} records its subtree`);
  }
  assert.equal(recorded.get(`${dir}/links`)?.subtree, undefined, 'a file with two names: no summary');
  assert.equal(recorded.get(dir)?.subtree, undefined, 'nor above it');
  const a = recorded.get(`${dir}/a`);
  assert.deepEqual(a?.subtree?.slice(1), [4, 'file 0\n'.repeat(1).length + 'file 1\n'.repeat(2).length], 'a/ holds b, b/ holds c and f2, c/ holds f1: 4 entries, 2 files');

  // Listed ahead with the walk's account names and rules: the digests are the recorded ones.
  const accounts = await readAccountNames();
  const ahead = new ListingPrefetch([dir], { excludes, accounts });
  const listed = await ahead.subtreeDigests();
  const summarised = [...recorded].filter(([, e]) => e.subtree !== undefined);
  assert.deepEqual([...listed.keys()].sort(), summarised.map(([at]) => at).sort(), 'a digest where a summary was recorded, nowhere else');
  for (const [at, entry] of summarised) assert.equal(listed.get(at), entry.subtree?.[0], `${at}: the digest recorded`);
  ahead.dispose();

  // With the walk's own seed, through an incremental: every digest matches, nothing is read.
  const second = await backupFiles(repo, { host: 'recorded', paths: [dir], parent: full, excludes });
  assert.equal(second.stats.bytesRead, 0);
  assert.equal((await entryAt(second, dir)).tree, (await entryAt(full, dir)).tree);
  assert.equal(second.files?.entries, full.files?.entries);
  assert.equal(second.stats.bytesLogical, full.stats.bytesLogical);
});

test('format 1: an unchanged subtree keeps its parent trees unread (their objects removed); a change deep below is found, its siblings kept', async () => {
  const dir = join(work, 'unread');
  await makeTree(dir);
  await rm(join(dir, 'links'), { recursive: true }); // every directory summarised, the given one too
  const first = await backupFiles(repo, { host: 'unread', paths: [dir] });
  assert.ok((await entryAt(first, dir)).subtree !== undefined);
  const removed = await removeTreesBelow(first, dir);
  assert.equal(removed, 6, 'a, a/b, a/b/c, a/d, e, empty');

  const second = await backupFiles(repo, { host: 'unread', paths: [dir], parent: first });
  assert.deepEqual(second.files?.warnings, []);
  assert.equal(second.stats.bytesRead, 0);
  assert.equal((await entryAt(second, dir)).tree, (await entryAt(first, dir)).tree, 'the given directory is its parent tree');
  assert.equal(second.files?.entries, first.files?.entries, 'entries counted from the summary');
  assert.equal(second.stats.bytesLogical, first.stats.bytesLogical);

  // A file three levels down rewritten: only the trees on its way are read (the others are gone again).
  // A full backup first stores the trees again (e's anew: reading its symlink's target moved the link's access time).
  const stored = await backupFiles(repo, { host: 'unread-stored-again', paths: [dir] });
  assert.equal(await removeTreesBelow(stored, dir, [`${dir}/a/b/c`]), 3, 'a/d, e, empty');
  await new Promise((resolve) => setTimeout(resolve, 20));
  await writeFile(join(dir, 'a', 'b', 'c', 'f1'), 'rewritten, and longer\n');
  const third = await backupFiles(repo, { host: 'unread', paths: [dir], parent: stored });
  assert.deepEqual(third.files?.warnings, []);
  assert.equal(third.stats.bytesRead, 'rewritten, and longer\n'.length, 'the one file read');
  assert.equal((await entryAt(third, `${dir}/a/b/c/f1`)).size, 'rewritten, and longer\n'.length);
  for (const kept of ['a/d', 'e', 'empty']) assert.equal((await entryAt(third, `${dir}/${kept}`)).tree, (await entryAt(stored, `${dir}/${kept}`)).tree, `${kept} kept`);
  const full = await backupFiles(repo, { host: 'unread-full', paths: [dir] });
  assert.equal((await entryAt(third, dir)).tree, (await entryAt(full, dir)).tree, 'the trees a full backup records');
  assert.deepEqual((await entryAt(third, dir)).subtree, (await entryAt(full, dir)).subtree, 'and the same summary');
  assert.equal(third.files?.entries, full.files?.entries);
  assert.equal(third.stats.bytesLogical, full.stats.bytesLogical);
});

test('other excludes, a new file deep below, a hard link made: each is seen though the listings above are unchanged', async () => {
  const dir = join(work, 'changes');
  await makeTree(dir);
  await rm(join(dir, 'links'), { recursive: true });
  const first = await backupFiles(repo, { host: 'changes', paths: [dir] });

  const excluded = await backupFiles(repo, { host: 'changes', paths: [dir], parent: first, excludes: await Excludes.compile({ patterns: ['f1'] }) });
  assert.deepEqual((await getFileTree(repo, (await entryAt(excluded, `${dir}/a/b/c`)).tree as string)).entries.map((e) => e.name), []);

  await writeFile(join(dir, 'a', 'b', 'c', 'new'), 'new\n');
  await writeFile(join(dir, 'a', 'd', 'f3'), 'same length\n'.slice(0, 'file 2\n'.repeat(3).length)); // mtime and ctime move
  const second = await backupFiles(repo, { host: 'changes', paths: [dir], parent: first });
  assert.deepEqual((await getFileTree(repo, (await entryAt(second, `${dir}/a/b/c`)).tree as string)).entries.map((e) => e.name), ['f1', 'new']);
  assert.equal(second.files?.entries, (first.files?.entries as number) + 1);

  await link(join(dir, 'e', 'f4'), join(dir, 'e', 'f4-again'));
  const third = await backupFiles(repo, { host: 'changes', paths: [dir], parent: second });
  const e = (await getFileTree(repo, (await entryAt(third, `${dir}/e`)).tree as string)).entries;
  assert.equal(e.find((x) => x.name === 'f4')?.hardlink, e.find((x) => x.name === 'f4-again')?.hardlink);
  assert.ok(e.find((x) => x.name === 'f4')?.hardlink !== undefined);
  assert.equal((await entryAt(third, dir)).subtree, undefined, 'a hard link below: no summary above it');
  const fourth = await backupFiles(repo, { host: 'changes', paths: [dir], parent: third });
  assert.equal(fourth.stats.bytesRead, 0);
  assert.equal((await entryAt(fourth, `${dir}/a`)).tree, (await entryAt(third, `${dir}/a`)).tree, 'the subtrees without links still kept');
});

test('an access time moved by reading alone changes nothing recorded; one set by hand (its ctime moves) is recorded', async (t) => {
  const dir = join(work, 'atimes');
  await mkdir(join(dir, 'sub'), { recursive: true });
  await writeFile(join(dir, 'sub', 'file'), 'read me\n');
  await symlink('file', join(dir, 'sub', 'link'));
  // Access times before the modification times: under relatime the next read moves them.
  const past = new Date(Date.now() - 86_400_000 * 3);
  await utimes(join(dir, 'sub', 'file'), past, new Date());
  const first = await backupFiles(repo, { host: 'atimes', paths: [dir] });
  const before = (await lstat(join(dir, 'sub', 'file'), { bigint: true })).atimeNs;
  await readFile(join(dir, 'sub', 'file'));
  await readlink(join(dir, 'sub', 'link'));
  const after = await lstat(join(dir, 'sub', 'file'), { bigint: true });
  if (after.atimeNs === before) {
    t.skip('this filesystem does not move access times on reads (noatime)');
    return;
  }
  const second = await backupFiles(repo, { host: 'atimes', paths: [dir], parent: first });
  assert.equal((await entryAt(second, dir)).tree, (await entryAt(first, dir)).tree, 'the same trees');
  assert.equal((await entryAt(second, `${dir}/sub/file`)).atime, (await entryAt(first, `${dir}/sub/file`)).atime, 'the access time recorded before');

  await utimes(join(dir, 'sub', 'file'), new Date(2_000_000_000_000), after.mtime);
  const third = await backupFiles(repo, { host: 'atimes', paths: [dir], parent: second });
  assert.equal((await entryAt(third, `${dir}/sub/file`)).atime, '2000000000000000000');
  assert.equal(third.stats.bytesRead, 'read me\n'.length, 'its ctime moved: read again');
});

test('subdirectories are digested in the trees\' order, by UTF-8 bytes, where UTF-16 would order them otherwise', async () => {
  for (const [a, b] of [['a', 'b'], ['Z', 'a'], ['\uFF5E', '\u{1F600}'], ['\uFFFD', '\u{10000}'], ['é', 'e\u0301'], ['ab', 'a']] as const) {
    assert.equal(Math.sign(byUtf8Bytes(a, b)), Math.sign(compareNames(a, b)), `${a} ${b}`);
  }
  const dir = join(work, 'ordered');
  // U+FF5E is EF BD 9E in UTF-8, U+1F600 F0 9F 98 80: in UTF-16 the surrogate pair (D83D) comes first.
  for (const name of ['\uFF5E', '\u{1F600}', 'plain']) await mkdir(join(dir, name, 'below'), { recursive: true });
  const full = await backupFiles(repo, { host: 'ordered', paths: [dir] });
  const recorded = (await entryAt(full, dir)).subtree?.[0];
  assert.ok(recorded !== undefined);
  const ahead = new ListingPrefetch([dir], { accounts: await readAccountNames() });
  assert.equal((await ahead.subtreeDigests()).get(dir), recorded);
  const second = await backupFiles(repo, { host: 'ordered', paths: [dir], parent: full, listings: ahead });
  assert.equal((await entryAt(second, dir)).tree, (await entryAt(full, dir)).tree);
});
