/**
 * The fast paths of file backup and restore against a real repository on the real
 * filesystem (no external program): the metadata cache of an incremental (a file is re-read
 * when only its ctime tells it changed), small files read whole still reporting a change
 * under them, chunks shared by files read in one batch stored once, and a restore writing
 * many files at once keeping hard links and directory times.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFile, chmod, chown, link, lstat, lutimes, mkdir, mkdtemp, readdir, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { SharedBufferPool } from '../../concurrency/index.js';
import { encodeName } from '../../names/index.js';
import { syscalls } from '../../native/index.js';
import { ChunksById, compareNames, decodeLocatedEntry, getFileTree, initRepository, isSafeEntryName, LocalBackend, openRepository, type Repository, type Snapshot, type TreeEntry } from '../../repo/index.js';
import { restoreFileSnapshot } from '../../restore/index.js';
import { Excludes, ListingPrefetch, readAccountNames, readFileMetadata } from '../../source/index.js';
import { KnownChunks } from '../known-chunks.js';
import { backupFiles } from './backup-files.js';
import { ChunkStore } from './chunk-store.js';
import { readFileContent } from './read-file.js';

let work: string;
let repo: Repository;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'coffer-files-fast-'));
  const backend = new LocalBackend(join(work, 'repo'));
  await initRepository(backend, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * 1024 });
  repo = await openRepository(backend, { passphrase: 'pw', threads: 2 });
});
after(async () => {
  await repo?.close();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

/** The entry at `path` below the snapshot's root (path relative to /, as recorded). */
async function entryAt(snapshot: Snapshot, path: string, from: Repository = repo): Promise<TreeEntry> {
  let tree = snapshot.files?.tree as string;
  const names = path.split('/').filter(Boolean);
  for (const [i, name] of names.entries()) {
    const entry = (await getFileTree(from, tree)).entries.find((e) => e.name === name);
    assert.ok(entry !== undefined, `${name} in the snapshot`);
    if (i === names.length - 1) return entry;
    tree = entry.tree as string;
  }
  throw new Error('empty path');
}

test('incremental: an unchanged file is not read; one rewritten with the same size and mtime is re-read by its ctime; force reads all', async () => {
  const dir = join(work, 'cache');
  await mkdir(dir);
  await writeFile(join(dir, 'same'), 'unchanged content\n');
  await writeFile(join(dir, 'sneaky'), 'version one\n');
  const first = await backupFiles(repo, { host: 'cache', paths: [dir] });
  const before = await lstat(join(dir, 'sneaky'), { bigint: true });
  await new Promise((resolve) => setTimeout(resolve, 20)); // ctime's clock ticks coarser than ns
  await writeFile(join(dir, 'sneaky'), 'version two\n'); // same size
  syscalls.setTimes(join(dir, 'sneaky'), before.atimeNs, before.mtimeNs); // same mtime, to the ns
  const now = await lstat(join(dir, 'sneaky'), { bigint: true });
  assert.equal(now.mtimeNs, before.mtimeNs);
  assert.notEqual(now.ctimeNs, before.ctimeNs);

  const second = await backupFiles(repo, { host: 'cache', paths: [dir], parent: first });
  assert.equal(second.stats.bytesRead, 'version two\n'.length, 'only the file whose ctime moved was read');
  assert.deepEqual((await entryAt(second, `${dir}/same`)).content, (await entryAt(first, `${dir}/same`)).content);
  assert.notDeepEqual((await entryAt(second, `${dir}/sneaky`)).content, (await entryAt(first, `${dir}/sneaky`)).content);
  const out = join(work, 'cache-out');
  await restoreFileSnapshot(repo, second, { to: out });
  assert.equal(await readFile(join(out, dir, 'sneaky'), 'utf8'), 'version two\n');

  const forced = await backupFiles(repo, { host: 'cache', paths: [dir], parent: second, force: true });
  assert.equal(forced.stats.bytesRead, 'unchanged content\n'.length + 'version two\n'.length);
});

test('incremental: extended attributes of an inode whose ctime is unchanged are kept from the parent; a changed one is read again', async () => {
  const dir = join(work, 'attrs');
  await mkdir(dir);
  await writeFile(join(dir, 'tagged'), 'x');
  await writeFile(join(dir, 'plain'), 'y');
  syscalls.setXattr(join(dir, 'tagged'), 'user.colour', Buffer.from('red'));
  const first = await backupFiles(repo, { host: 'attrs', paths: [dir] });
  const second = await backupFiles(repo, { host: 'attrs', paths: [dir], parent: first });
  const red = [['user.colour', Buffer.from('red').toString('base64')]];
  assert.deepEqual((await entryAt(second, `${dir}/tagged`)).xattrs, red);
  await new Promise((resolve) => setTimeout(resolve, 20));
  syscalls.setXattr(join(dir, 'tagged'), 'user.colour', Buffer.from('blue')); // moves the ctime only
  syscalls.setXattr(join(dir, 'plain'), 'user.new', Buffer.from('1'));
  const third = await backupFiles(repo, { host: 'attrs', paths: [dir], parent: second });
  assert.equal(third.stats.bytesRead, 2, 'both files re-read: their ctimes moved');
  assert.deepEqual((await entryAt(third, `${dir}/tagged`)).xattrs, [['user.colour', Buffer.from('blue').toString('base64')]]);
  assert.deepEqual((await entryAt(third, `${dir}/plain`)).xattrs, [['user.new', Buffer.from('1').toString('base64')]]);
});

test('names: entries sorted by their bytes, a real U+FFFD kept, bytes that are not UTF-8 kept as they are', async () => {
  const dir = join(work, 'names');
  await mkdir(dir);
  // UTF-16 order puts U+1F600 (a surrogate pair) before U+E000; UTF-8 order after it.
  const names = ['b', 'A', 'a\uE000', 'a\u{1F600}', 'a\uFFFD', 'a\u00e9', 'a'];
  for (const name of names) await writeFile(join(dir, name), name);
  // a\xff and a\xc3 (a UTF-8 lead byte alone): bytes, not UTF-8; the latter sorts before a\u00e9 (C3 A9).
  const raw = [Buffer.from([0x61, 0xff]), Buffer.from([0x61, 0xc3])];
  for (const bytes of raw) await writeFile(Buffer.concat([Buffer.from(`${dir}/`), bytes]), bytes);
  const warnings: string[] = [];
  const snapshot = await backupFiles(repo, { host: 'names', paths: [dir], onWarning: (w) => warnings.push(w.message) });
  const tree = await getFileTree(repo, (await entryAt(snapshot, dir)).tree as string);
  const byBytes = [...names.map((n) => Buffer.from(n)), ...raw].sort(Buffer.compare);
  assert.deepEqual(tree.entries.map((e) => encodeName(e.name).toString('hex')), byBytes.map((b) => b.toString('hex')));
  assert.deepEqual(warnings, []);
  const out = join(work, 'names-out');
  await restoreFileSnapshot(repo, snapshot, { to: out });
  const restored = await readdir(join(out, dir), { encoding: 'buffer' });
  assert.deepEqual(restored.sort(Buffer.compare).map((b) => b.toString('hex')), byBytes.map((b) => b.toString('hex')));
  for (const bytes of raw) assert.deepEqual(await readFile(Buffer.concat([Buffer.from(`${out}${dir}/`), bytes])), bytes);
});

test('compareNames orders as the names\' bytes do; isSafeEntryName refuses lone surrogates that are no raw byte and names over 255 bytes', () => {
  const alphabet = ['a', 'z', '\u00e9', '\u07ff', '\u0800', '\ud7ff', '\ue000', '\uffff', '\ufffd', '\u{10000}', '\u{1F600}', '\u{10FFFF}', '\udc80', '\udce9', '\udcff'];
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  const pick = (n: number) => Math.floor((next() / 2 ** 31) * n); // the high bits: an LCG's low bits cycle short
  const word = () => Array.from({ length: 1 + pick(4) }, () => alphabet[pick(alphabet.length)]).join('');
  for (let i = 0; i < 2000; i++) {
    const a = word();
    const b = i % 10 === 0 ? a : word();
    assert.equal(compareNames(a, b), Math.sign(Buffer.compare(encodeName(a), encodeName(b))), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  }
  assert.equal(isSafeEntryName('a\ud800'), false);
  assert.equal(isSafeEntryName('\udc00a'), false);
  assert.equal(isSafeEntryName('caf\udce9'), true, 'a raw byte (Latin-1 é)');
  assert.equal(isSafeEntryName('caf\udcc3\udca9'), false, 'raw bytes that spell é in UTF-8: that name is café');
  assert.equal(isSafeEntryName('a\u{1F600}'), true);
  assert.equal(isSafeEntryName('\u00e9'.repeat(127)), true); // 254 bytes
  assert.equal(isSafeEntryName('\u00e9'.repeat(128)), false); // 256 bytes in 128 units
  assert.equal(isSafeEntryName('x'.repeat(256)), false);
  assert.equal(isSafeEntryName('\udce9'.repeat(255)), true); // 255 raw bytes
  assert.equal(isSafeEntryName('\udce9'.repeat(256)), false);
});

test('incremental of an unchanged tree (hard links, a symlink, a FIFO, an empty file) is the parent tree, nothing read', async () => {
  const dir = join(work, 'steady');
  await mkdir(join(dir, 'sub'), { recursive: true });
  await writeFile(join(dir, 'sub', 'one'), 'one');
  await link(join(dir, 'sub', 'one'), join(dir, 'one-again'));
  await writeFile(join(dir, 'empty'), '');
  await symlink('sub/one', join(dir, 'to-one'));
  syscalls.mknod(join(dir, 'pipe'), 0o010600, 0, 0);
  // Access times an hour ahead: under relatime a readdir, readlink or read updates an atime
  // that is not after the mtime/ctime, and the kernel's coarse atime clock can trail a
  // fine-grained mtime by a tick (multigrain timestamps), so without this an access could set
  // a new atime on any of the backups below (seen under load). Set last: lutimes moves ctime.
  const later = new Date(Date.now() + 3600_000);
  for (const name of ['sub/one', 'empty', 'to-one', 'pipe', 'sub', '.']) {
    const at = join(dir, name);
    await lutimes(at, later, (await lstat(at)).mtime);
  }
  const first = await backupFiles(repo, { host: 'steady', paths: [dir] });
  const second = await backupFiles(repo, { host: 'steady', paths: [dir], parent: first });
  const third = await backupFiles(repo, { host: 'steady', paths: [dir], parent: second });
  // The tree of `dir`, not the root: the root tree also records the directories above `dir`,
  // among them the test run's TMPDIR, which test files running beside this one change.
  assert.equal((await entryAt(third, dir)).tree, (await entryAt(second, dir)).tree);
  assert.equal(second.stats.bytesRead + third.stats.bytesRead, 0);
  assert.equal(third.files?.entries, first.files?.entries);
  assert.equal((await entryAt(third, `${dir}/one-again`)).hardlink, (await entryAt(third, `${dir}/sub/one`)).hardlink);
  assert.deepEqual((await entryAt(third, `${dir}/sub/one`)).content, (await entryAt(first, `${dir}/sub/one`)).content);
});

test('incremental: an entry whose metadata changed is recorded anew (mode, owner, times, a symlink retargeted), its unchanged neighbours and subtrees as the parent recorded them', async () => {
  const dir = join(work, 'records');
  await mkdir(join(dir, 'quiet'), { recursive: true });
  await mkdir(join(dir, 'busy'), { recursive: true });
  for (const name of ['quiet/a', 'quiet/b', 'busy/moded', 'busy/owned', 'busy/kept', 'busy/timed']) await writeFile(join(dir, name), name);
  await symlink('kept', join(dir, 'busy', 'link'));
  const later = new Date(Date.now() + 3600_000); // atimes ahead: no read moves them (see above)
  for (const name of ['quiet/a', 'quiet/b', 'quiet', 'busy/moded', 'busy/owned', 'busy/kept', 'busy/timed', 'busy/link', 'busy', '.']) {
    const at = join(dir, name);
    await lutimes(at, later, (await lstat(at)).mtime);
  }
  const first = await backupFiles(repo, { host: 'records', paths: [dir] });
  await new Promise((resolve) => setTimeout(resolve, 20)); // a ctime tick
  syscalls.setTimes(join(dir, 'busy', 'timed'), 1_000_000_000_123_456_789n, 1_500_000_000_000_000_001n);
  await chmod(join(dir, 'busy', 'moded'), 0o600);
  await chown(join(dir, 'busy', 'owned'), 4321, 8765);
  await rm(join(dir, 'busy', 'link'));
  await symlink('moded', join(dir, 'busy', 'link'));
  const second = await backupFiles(repo, { host: 'records', paths: [dir], parent: first });

  assert.equal((await entryAt(second, `${dir}/quiet`)).tree, (await entryAt(first, `${dir}/quiet`)).tree, 'an untouched directory is its parent tree');
  assert.deepEqual(await entryAt(second, `${dir}/busy/kept`), await entryAt(first, `${dir}/busy/kept`));
  assert.equal((await entryAt(second, `${dir}/busy/moded`)).mode, 0o600);
  assert.deepEqual([(await entryAt(second, `${dir}/busy/owned`)).uid, (await entryAt(second, `${dir}/busy/owned`)).gid], [4321, 8765]);
  const timed = await entryAt(second, `${dir}/busy/timed`);
  assert.deepEqual([timed.atime, timed.mtime], ['1000000000123456789', '1500000000000000001']);
  assert.equal((await entryAt(second, `${dir}/busy/link`)).target, 'moded');
  for (const name of ['moded', 'owned', 'timed', 'kept']) {
    assert.deepEqual((await entryAt(second, `${dir}/busy/${name}`)).content, (await entryAt(first, `${dir}/busy/${name}`)).content, `${name}: same content`);
  }
  // The files whose ctime moved (chmod, chown, utimensat) were read again, no other.
  assert.equal(second.stats.bytesRead, 'busy/timed'.length + 'busy/moded'.length + 'busy/owned'.length);
});

/** The change times of the directories above `path`: the tree above a backed-up path records them. */
async function ancestorTimes(path: string): Promise<string> {
  const times: string[] = [];
  for (let at = dirname(path); ; at = dirname(at)) {
    times.push(`${at} ${(await lstat(at, { bigint: true })).ctimeNs}`);
    if (at === dirname(at)) return times.join('\n');
  }
}

test('format 2: an incremental of an unchanged tree, in a repository opened afresh, starts no codec thread (segments and trees opened on the main thread)', async (t) => {
  const dir = join(work, 'steady2');
  await mkdir(join(dir, 'sub', 'deeper'), { recursive: true });
  for (let i = 0; i < 40; i++) await writeFile(join(dir, 'sub', i % 2 === 0 ? 'deeper' : '', `f${i}`), `file ${i}\n`.repeat(i * 50));
  const later = new Date(Date.now() + 3600_000); // access times ahead, as in the test above: no atime moves under relatime
  for (const name of [...Array.from({ length: 40 }, (_, i) => join('sub', i % 2 === 0 ? 'deeper' : '', `f${i}`)), 'sub/deeper', 'sub', '.']) {
    const at = join(dir, name);
    await lutimes(at, later, (await lstat(at)).mtime);
  }
  const backend = new LocalBackend(join(work, 'repo2'));
  await initRepository(backend, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, format: 2 });
  const writer = await openRepository(backend, { passphrase: 'pw', threads: 2 });
  let first: Snapshot;
  const ancestorsBefore = await ancestorTimes(dir);
  try {
    first = await backupFiles(writer, { host: 'steady2', paths: [dir] });
    assert.equal(writer.pool.started, true, 'the full stored chunks through the pool');
  } finally {
    await writer.close();
  }
  const reader = await openRepository(backend, { passphrase: 'pw', threads: 2 });
  try {
    const second = await backupFiles(reader, { host: 'steady2', paths: [dir], parent: first });
    assert.equal(second.stats.bytesRead, 0, 'every file matched its entry in the parent trees read on the main thread');
    // Other test files of the run write into the shared temporary folder: a directory above
    // `dir` that changed is a new tree to seal, which rightly starts the pool.
    if ((await ancestorTimes(dir)) === ancestorsBefore) assert.equal(reader.pool.started, false, 'the incremental started the codec threads');
    else t.diagnostic('a directory above the backed-up one changed during the test: the codec threads were not checked');
    // The tree of `dir`, not the root (which records the directories above it: see the test above).
    assert.equal((await entryAt(second, dir, reader)).tree, (await entryAt(first, dir, reader)).tree);
  } finally {
    await reader.close();
  }
});

test('incremental: a directory listed as the parent snapshot recorded it keeps its tree unread; edits below it, other excludes, names that are not UTF-8 and hard links are not missed', async () => {
  const dir = join(work, 'listing');
  await mkdir(join(dir, 'leaf'), { recursive: true });
  await mkdir(join(dir, 'mid', 'sub'), { recursive: true });
  await mkdir(join(dir, 'linked'), { recursive: true });
  await mkdir(join(dir, 'odd'), { recursive: true });
  await writeFile(join(dir, 'leaf', 'a'), 'first a\n');
  await writeFile(join(dir, 'leaf', 'b'), 'first b, longer\n');
  await writeFile(join(dir, 'mid', 'c'), 'first c\n');
  await writeFile(join(dir, 'mid', 'sub', 'd'), 'first d\n');
  await writeFile(join(dir, 'linked', 'x'), 'two names\n');
  await link(join(dir, 'linked', 'x'), join(dir, 'linked', 'y'));
  await writeFile(Buffer.concat([Buffer.from(`${join(dir, 'odd')}/`), Buffer.from([0x66, 0xff, 0x6f])]), 'not UTF-8\n');
  await writeFile(join(dir, 'odd', 'fine'), 'fine\n');
  // Access times an hour ahead, as in the test above: a backup's reads must not move them.
  const later = new Date(Date.now() + 3600_000);
  const ahead = async (at: Buffer): Promise<void> => {
    const stat = await lstat(at);
    if (stat.isDirectory()) for (const name of await readdir(at, { encoding: 'buffer' })) await ahead(Buffer.concat([at, Buffer.from('/'), name]));
    await lutimes(at, later, stat.mtime);
  };
  await ahead(Buffer.from(dir));
  const contentOf = async (snapshot: Snapshot, path: string) => (await entryAt(snapshot, `${dir}/${path}`)).content;

  const first = await backupFiles(repo, { host: 'listing', paths: [dir] });
  const leaf = await entryAt(first, `${dir}/leaf`);
  assert.deepEqual(leaf.scan?.slice(1), [2, 'first a\n'.length + 'first b, longer\n'.length], 'the leaf records its listing, its entries and bytes');
  assert.match(leaf.scan?.[0] ?? '', /^[0-9a-f]{32}$/);
  assert.ok((await entryAt(first, `${dir}/mid`)).scan !== undefined, 'a directory with a subdirectory records its listing too');
  assert.equal((await entryAt(first, `${dir}/linked`)).scan, undefined, 'no listing recorded where a file has other names');
  assert.ok((await entryAt(first, `${dir}/odd`)).scan !== undefined, 'a name that is not UTF-8 is backed up as its bytes: the listing is recorded');
  assert.deepEqual(first.files?.warnings, []);

  const second = await backupFiles(repo, { host: 'listing', paths: [dir], parent: first });
  assert.equal(second.stats.bytesRead, 0);
  assert.equal((await entryAt(second, dir)).tree, (await entryAt(first, dir)).tree, 'nothing changed: the same trees');
  assert.equal(second.files?.entries, first.files?.entries, 'the entries counted as a walk of every directory counts them');
  assert.equal(second.stats.bytesLogical, first.stats.bytesLogical);
  assert.equal((await entryAt(second, `${dir}/odd`)).tree, (await entryAt(first, `${dir}/odd`)).tree, 'the directory holding f\\xffo kept unread');
  assert.deepEqual(second.files?.warnings, []);

  // Edits: a file of the leaf rewritten with its size; a file below an unchanged directory (mid's listing is the same, sub's is not).
  await new Promise((resolve) => setTimeout(resolve, 20));
  await writeFile(join(dir, 'leaf', 'a'), 'other a\n');
  await writeFile(join(dir, 'mid', 'sub', 'd'), 'other d, longer\n');
  const third = await backupFiles(repo, { host: 'listing', paths: [dir], parent: second });
  assert.equal(third.stats.bytesRead, 'other a\n'.length + 'other d, longer\n'.length, 'both edited files read, nothing else');
  assert.notDeepEqual(await contentOf(third, 'leaf/a'), await contentOf(second, 'leaf/a'));
  assert.deepEqual(await contentOf(third, 'leaf/b'), await contentOf(second, 'leaf/b'));
  assert.notDeepEqual(await contentOf(third, 'mid/sub/d'), await contentOf(second, 'mid/sub/d'));
  assert.deepEqual(await contentOf(third, 'mid/c'), await contentOf(second, 'mid/c'));
  const out = join(work, 'listing-out');
  await restoreFileSnapshot(repo, third, { to: out });
  assert.equal(await readFile(join(out, dir, 'leaf', 'a'), 'utf8'), 'other a\n');
  assert.equal(await readFile(join(out, dir, 'mid', 'sub', 'd'), 'utf8'), 'other d, longer\n');

  // Other rules, the same listings: what they leave out is left out.
  const fourth = await backupFiles(repo, { host: 'listing', paths: [dir], parent: third, excludes: await Excludes.compile({ patterns: ['b', 'c'] }) });
  const leafNames = (await getFileTree(repo, (await entryAt(fourth, `${dir}/leaf`)).tree as string)).entries.map((e) => e.name);
  const midNames = (await getFileTree(repo, (await entryAt(fourth, `${dir}/mid`)).tree as string)).entries.map((e) => e.name);
  assert.deepEqual(leafNames, ['a']);
  assert.deepEqual(midNames, ['sub']);
  assert.equal(fourth.files?.entries, (third.files?.entries as number) - 2);
});

test('listings made ahead (while the repository opened) give the snapshot a walk that lists by itself gives, dated from the first listing', async () => {
  const dir = join(work, 'ahead');
  for (const sub of ['one/two/three', 'one/four', 'five']) await mkdir(join(dir, sub), { recursive: true });
  for (const [i, file] of ['one/a', 'one/two/b', 'one/two/three/c', 'one/four/d', 'five/e', 'f'].entries()) await writeFile(join(dir, file), `file ${i}\n`.repeat(i + 1));
  // Access times an hour ahead, as above: listing a directory must not move them between backups.
  const later = new Date(Date.now() + 3600_000);
  const ahead = async (at: string): Promise<void> => {
    const stat = await lstat(at);
    if (stat.isDirectory()) for (const name of await readdir(at)) await ahead(join(at, name));
    await lutimes(at, later, stat.mtime);
  };
  await ahead(dir);
  const first = await backupFiles(repo, { host: 'ahead', paths: [dir] });

  // One file three levels down rewritten before the listings: the walk needs the listings on its way.
  await writeFile(join(dir, 'one/two/three/c'), 'file 2\nrewritten\n');
  const listings = new ListingPrefetch([dir], { accounts: await readAccountNames() });
  await listings.whenIdle();
  assert.equal(listings.listed, 6, 'every directory listed ahead');
  let handed = 0;
  const take = listings.take.bind(listings);
  listings.take = (path) => {
    const listing = take(path);
    if (listing !== undefined) handed++;
    return listing;
  };
  const second = await backupFiles(repo, { host: 'ahead', paths: [dir], parent: first, listings });
  assert.equal(second.stats.bytesRead, 'file 2\nrewritten\n'.length);
  assert.equal((await entryAt(second, `${dir}/one/four`)).tree, (await entryAt(first, `${dir}/one/four`)).tree, 'an unchanged subtree kept');
  assert.notEqual((await entryAt(second, `${dir}/one/two/three`)).tree, (await entryAt(first, `${dir}/one/two/three`)).tree);
  assert.equal(second.files?.entries, first.files?.entries);
  assert.equal(handed, 4, 'the walk took the listings of the changed path (the directory, one, two, three) and listed nothing itself');
  assert.ok(Date.parse(second.time) <= listings.startedAt.getTime(), 'the snapshot is dated when its first listing started');
  assert.equal(listings.take(dir), undefined, 'the listings are dropped once the walk ended');

  // A full backup with listings ahead, one directory edited meanwhile: the walk's own listing of it is the newer.
  const early = new ListingPrefetch([dir], { concurrency: 1 });
  assert.equal(early.take(join(dir, 'five')), undefined, 'asked before it is listed: the walk lists it itself');
  await early.whenIdle();
  await writeFile(join(dir, 'five', 'new'), 'added after the listings were made\n');
  const third = await backupFiles(repo, { host: 'ahead-full', paths: [dir], listings: early });
  const five = (await getFileTree(repo, (await entryAt(third, `${dir}/five`)).tree as string)).entries.map((e) => e.name);
  assert.deepEqual(five, ['e', 'new']);
  assert.equal(third.files?.entries, (first.files?.entries as number) + 1);
});

// Format 1 on purpose: a tree is an object of its own there, which the test removes.
test('format 1: the tree of a directory listed as the parent recorded it is not read (its object removed, the incremental reads no file and keeps it)', async () => {
  const root = join(work, 'repo-v1-listing');
  const backend = new LocalBackend(root);
  await initRepository(backend, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * 1024, format: 1 });
  const v1 = await openRepository(backend, { passphrase: 'pw', threads: 1 });
  try {
    const dir = join(work, 'listing-v1');
    await mkdir(join(dir, 'leaf'), { recursive: true });
    await writeFile(join(dir, 'leaf', 'a'), 'a\n');
    await writeFile(join(dir, 'leaf', 'b'), 'b\n');
    const later = new Date(Date.now() + 3600_000);
    for (const at of [join(dir, 'leaf', 'a'), join(dir, 'leaf', 'b'), join(dir, 'leaf'), dir]) await lutimes(at, later, (await lstat(at)).mtime);
    const first = await backupFiles(v1, { host: 'listing-v1', paths: [dir] });
    const leafTree = (await entryAt(first, `${dir}/leaf`, v1)).tree as string;
    await rm(join(root, 'trees', leafTree.slice(0, 2), leafTree));
    const second = await backupFiles(v1, { host: 'listing-v1', paths: [dir], parent: first });
    assert.deepEqual(second.files?.warnings, []);
    assert.equal(second.stats.bytesRead, 0, 'the leaf\'s files were not read again: its parent tree was not needed');
    assert.equal((await entryAt(second, `${dir}/leaf`, v1)).tree, leafTree);
    assert.equal(second.files?.entries, first.files?.entries);
  } finally {
    await v1.close();
  }
});

test('a small file that grew or shrank after its lstat is reported as changed while read, with what was read', async () => {
  const dir = join(work, 'moving');
  await mkdir(dir);
  const store = new ChunkStore(repo, new SharedBufferPool(ChunkStore.windowSize(), 1), new KnownChunks(), new Set(), { bytesRead: 0, bytesNew: 0, bytesStored: 0 });
  const grows = join(dir, 'grows');
  await writeFile(grows, 'a'.repeat(1000));
  const grownBefore = await readFileMetadata(grows);
  await appendFile(grows, 'more');
  const grown = await readFileContent(grows, grownBefore, store, true);
  assert.equal(grown.warning, 'changed while read');
  assert.equal(grown.size, 1000, 'the size lstat saw is what is recorded');

  const shrinks = join(dir, 'shrinks');
  await writeFile(shrinks, 'b'.repeat(5000));
  const shrunkBefore = await readFileMetadata(shrinks);
  await truncate(shrinks, 100);
  const shrunk = await readFileContent(shrinks, shrunkBefore, store, true);
  assert.equal(shrunk.warning, 'changed while read');
  assert.equal(shrunk.size, 100);

  const steady = join(dir, 'steady');
  await writeFile(steady, 'c'.repeat(3000));
  const read = await readFileContent(steady, await readFileMetadata(steady), store, true);
  assert.equal(read.warning, undefined);
  assert.equal(read.size, 3000);
});

test('many small files: equal contents read in one batch are stored once; the restore writes them all at once, hard links and directory times kept', async () => {
  const dir = join(work, 'many');
  for (let d = 0; d < 4; d++) {
    await mkdir(join(dir, `d${d}`), { recursive: true });
    for (let f = 0; f < 60; f++) await writeFile(join(dir, `d${d}`, `f${f}`), f % 10 === 0 ? 'shared content\n'.repeat(50) : `file ${d}/${f}\n`.repeat(f + 1));
  }
  await writeFile(join(dir, 'd0', 'linked'), 'one inode, three names\n');
  await link(join(dir, 'd0', 'linked'), join(dir, 'd2', 'linked-too'));
  await link(join(dir, 'd0', 'linked'), join(dir, 'd3', 'linked-three'));
  syscalls.setTimes(join(dir, 'd1'), 1_600_000_000_123_456_789n, 1_600_000_000_987_654_321n);

  const snapshot = await backupFiles(repo, { host: 'many', paths: [dir] });
  assert.deepEqual(snapshot.files?.warnings, []);
  const shared = 'shared content\n'.repeat(50).length;
  const uniqueBytes = snapshot.stats.bytesRead - 23 * shared; // 24 copies of the shared file, one stored
  assert.equal(snapshot.stats.bytesNew, uniqueBytes, 'each content stored once (the hard link read once)');

  const out = join(work, 'many-out');
  const report = await restoreFileSnapshot(repo, snapshot, { to: out, verify: true });
  assert.deepEqual(report.problems, []);
  assert.equal(report.hardLinks, 2);
  for (let d = 0; d < 4; d++) {
    for (let f = 0; f < 60; f++) assert.equal(await readFile(join(out, dir, `d${d}`, `f${f}`), 'utf8'), await readFile(join(dir, `d${d}`, `f${f}`), 'utf8'));
  }
  const inodes = await Promise.all([join('d0', 'linked'), join('d2', 'linked-too'), join('d3', 'linked-three')].map(async (p) => (await lstat(join(out, dir, p))).ino));
  assert.equal(new Set(inodes).size, 1, 'the three names are one inode');
  const times = await lstat(join(out, dir, 'd1'), { bigint: true });
  assert.equal(times.mtimeNs, 1_600_000_000_987_654_321n, 'directory mtime set after its files were written');
});

test('format 2, restore: each frame is read and opened once, though the backup packed the files of many directories together and the restore walks them by name', async () => {
  const dir = join(work, 'frames');
  const contents = new Map<string, Buffer>();
  for (let d = 0; d < 32; d++) {
    await mkdir(join(dir, `d${d}`), { recursive: true });
    for (let f = 0; f < 48; f++) {
      const bytes = randomBytes(2000 + 37 * f); // incompressible: frames fill by chunk count, not bytes
      contents.set(join(`d${d}`, `f${f}`), bytes);
      await writeFile(join(dir, `d${d}`, `f${f}`), bytes);
    }
  }
  const snapshot = await backupFiles(repo, { host: 'frames', paths: [dir] });
  // The frames holding the snapshot's content, from the index.
  const places = new ChunksById(repo);
  const frames = new Set<string>();
  const walk = async (tree: string): Promise<void> => {
    for (const entry of (await getFileTree(repo, tree)).entries) {
      if (entry.tree !== undefined) await walk(entry.tree);
      for (const [id] of entry.content ?? []) {
        const place = decodeLocatedEntry((await places.locations(Buffer.from(id, 'hex')))[0] as Buffer, id);
        frames.add(`${place.pack.toString('hex')}@${place.frameOffset}`);
      }
    }
  };
  await walk(snapshot.files?.tree as string);
  assert.ok(frames.size > 12, `more frames (${frames.size}) than a reader keeps decoded`);

  const out = join(work, 'frames-out');
  const report = await restoreFileSnapshot(repo, snapshot, { to: out });
  assert.deepEqual(report.problems, []);
  assert.equal(report.files, contents.size);
  assert.equal(report.fetched.objects, frames.size, 'each frame read once (written in the order they are stored, files are not read back out of frames gone from the cache)');
  for (const [path, bytes] of contents) assert.ok(bytes.equals(await readFile(join(out, dir, path))), path);
});

// Format 1 on purpose: one chunk object goes missing, which only format 1 stores alone (in
// format 2 a chunk lives in a pack with others: format2-damage.test.ts).
test('format 1, restore: a file whose chunk is missing is reported and left, every other file is restored, nothing hangs', async () => {
  const dir = join(work, 'damaged');
  await mkdir(dir);
  const big = Buffer.alloc(6 << 20);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i); // varied, so FastCDC cuts several chunks
  await writeFile(join(dir, 'big'), big);
  for (let f = 0; f < 40; f++) await writeFile(join(dir, `small${f}`), `small file ${f}\n`);
  const backend = new LocalBackend(join(work, 'repo-format1'));
  await initRepository(backend, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * 1024, format: 1 });
  const format1 = await openRepository(backend, { passphrase: 'pw', threads: 2 });
  try {
    const snapshot = await backupFiles(format1, { host: 'damaged', paths: [dir] });
    const pieces = (await entryAt(snapshot, `${dir}/big`, format1)).content ?? [];
    assert.ok(pieces.length >= 3, `big is ${pieces.length} chunks`);
    const missing = (pieces[1] as [string, number])[0];
    await rm(join(work, 'repo-format1', 'chunks', missing.slice(0, 2), missing));

    const out = join(work, 'damaged-out');
    const report = await restoreFileSnapshot(format1, snapshot, { to: out });
    assert.deepEqual(report.problems.map((p) => p.path), [`${dir}/big`]);
    for (let f = 0; f < 40; f++) assert.equal(await readFile(join(out, dir, `small${f}`), 'utf8'), `small file ${f}\n`);
  } finally {
    await format1.close();
  }
});

test('a large file read window by window is cut where FastCDC cuts the whole file, whatever the windows (chunks cut and hashed on the workers)', async () => {
  const dir = join(work, 'large-cut');
  await mkdir(dir);
  const { FastCdc } = await import('../../repo/index.js');
  // 14 MiB: random bytes around a zero run long enough for whole chunks of zeros.
  const data = Buffer.concat([randomBytes(5 * 1024 * 1024 + 12345), Buffer.alloc(6 * 1024 * 1024), randomBytes(3 * 1024 * 1024 - 999)]);
  await writeFile(join(dir, 'big'), data);
  const snapshot = await backupFiles(repo, { host: 'large-cut', paths: [dir] });
  const entry = await entryAt(snapshot, `${dir}/big`);
  const cdc = new FastCdc();
  const expected: [string, number][] = [];
  for (let start = 0; start < data.length; ) {
    const length = cdc.cut(data, start, data.length);
    const chunk = data.subarray(start, start + length);
    expected.push([chunk.every((b) => b === 0) ? 'zero' : repo.codec.idOf(chunk).toString('hex'), length]);
    start += length;
  }
  assert.ok(expected.some(([id]) => id === 'zero') && expected.length > 10, 'the file makes many chunks, one of zeros');
  assert.deepEqual(entry.content, expected);
});
