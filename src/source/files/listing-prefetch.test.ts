import assert from 'node:assert/strict';
import { linkSync, lstatSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CACHEDIR_TAG_SIGNATURE, Excludes } from './excludes.js';
import { ListingPrefetch } from './listing-prefetch.js';
import { listDirectory, type DirectoryScan } from './scan-directory.js';
import { listingSeed, subtreeDigest } from './subtree-digest.js';

const dir = mkdtempSync(join(tmpdir(), 'coffer-prefetch-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** root/{a/{a1,a2/deep},b,skipme/{below}} with a file in each directory. */
const root = join(dir, 'tree');
const directories = ['', '/a', '/a/a1', '/a/a2', '/a/a2/deep', '/b', '/skipme', '/skipme/below'].map((d) => root + d);
for (const d of directories) {
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'file.txt'), d);
}

function withoutAtimes(scan: DirectoryScan): unknown[] {
  return scan.entries(() => true, () => undefined).map(({ name, metadata }) => ({ name, ...metadata, atime: undefined }));
}

test('every directory below the roots is listed ahead, once, as the walk would list it', async () => {
  const prefetch = new ListingPrefetch([root]);
  await prefetch.whenIdle();
  assert.equal(prefetch.listed, directories.length);
  for (const d of directories) {
    const taken = prefetch.take(d);
    assert.ok(taken !== undefined, `${d} was listed`);
    // Listing a directory moves its atime (relatime): the rest of every entry is the same.
    assert.deepEqual(withoutAtimes(await taken), withoutAtimes(await listDirectory(d)));
    assert.equal(prefetch.take(d), undefined, 'handed over once');
  }
});

test('excluded directories are neither listed nor descended into', async () => {
  const prefetch = new ListingPrefetch([root], { excludes: await Excludes.compile({ patterns: ['skipme'] }) });
  await prefetch.whenIdle();
  assert.equal(prefetch.listed, directories.length - 2);
  assert.equal(prefetch.take(`${root}/skipme`), undefined);
  assert.equal(prefetch.take(`${root}/skipme/below`), undefined);
  assert.ok(prefetch.take(`${root}/a/a2/deep`) !== undefined);
});

test('a directory asked for before it is listed is left to the asker, with everything below it', async () => {
  const prefetch = new ListingPrefetch([root], { concurrency: 1 });
  assert.equal(prefetch.take(`${root}/a`), undefined); // only the root is under way
  await prefetch.whenIdle();
  assert.deepEqual(
    directories.filter((d) => prefetch.take(d) !== undefined),
    [root, `${root}/b`, `${root}/skipme`, `${root}/skipme/below`],
  );
});

test('listing stops once its budget of bytes is spent, and at stop()', async () => {
  const budget = new ListingPrefetch([root], { maxBytes: 1, concurrency: 1 });
  await budget.whenIdle();
  assert.equal(budget.listed, 1, 'the root, then the budget is spent');
  const stopped = new ListingPrefetch([root], { concurrency: 1 });
  stopped.stop();
  await stopped.whenIdle();
  assert.equal(stopped.listed, 1, 'the root was under way; nothing after it');
  assert.ok(stopped.take(root) !== undefined, 'what was under way can still be taken');
});

test('a listing that fails rejects when taken, with the errno, and never goes unhandled', async () => {
  const file = join(root, 'file.txt');
  const prefetch = new ListingPrefetch([file, join(dir, 'absent')]);
  await prefetch.whenIdle();
  await new Promise((resolve) => setImmediate(resolve)); // an unhandled rejection would fail the test here
  await assert.rejects(prefetch.take(file) as Promise<unknown>, { code: 'ENOTDIR' });
  await assert.rejects(prefetch.take(join(dir, 'absent')) as Promise<unknown>, { code: 'ENOENT' });
  prefetch.dispose();
});

/** The account names the digest tests seed with (any: both sides of a comparison use the same). */
const accounts = { users: new Map([[0, 'root']]), groups: new Map([[0, 'root']]) };

test('with account names, every directory gets its subtree digest, bottom-up, from the listings', async () => {
  const prefetch = new ListingPrefetch([root], { accounts });
  const digests = await prefetch.subtreeDigests();
  assert.deepEqual([...digests.keys()].sort(), [...directories].sort());
  // The formula, by hand, for a/a2 (one subdirectory, deep) and the leaf below it.
  const seed = listingSeed(accounts, undefined, lstatSync(root, { bigint: true }).dev);
  const deep = subtreeDigest((await listDirectory(`${root}/a/a2/deep`)).digest(seed), []);
  assert.equal(digests.get(`${root}/a/a2/deep`), deep);
  assert.equal(digests.get(`${root}/a/a2`), subtreeDigest((await listDirectory(`${root}/a/a2`)).digest(seed), [['deep', deep]]));

  // Anything below changed: the digests above it change, their neighbours' do not.
  writeFileSync(join(root, 'a', 'a2', 'deep', 'new.txt'), 'new');
  const again = await new ListingPrefetch([root], { accounts }).subtreeDigests();
  for (const d of [root, `${root}/a`, `${root}/a/a2`, `${root}/a/a2/deep`]) assert.notEqual(again.get(d), digests.get(d), `${d} changed`);
  for (const d of [`${root}/a/a1`, `${root}/b`, `${root}/skipme`]) assert.equal(again.get(d), digests.get(d), `${d} unchanged`);
  rmSync(join(root, 'a', 'a2', 'deep', 'new.txt'));

  // Other rules: another seed, every digest another.
  const excluded = await new ListingPrefetch([root], { accounts, excludes: await Excludes.compile({ patterns: ['*.tmp'] }) }).subtreeDigests();
  assert.notEqual(excluded.get(`${root}/b`), digests.get(`${root}/b`));
});

test('no digest above a directory left to the walk, a file with two names or a tagged cache\'s hidden subtree; the rest keep theirs', async () => {
  const claimed = new ListingPrefetch([root], { accounts, concurrency: 1 });
  assert.equal(claimed.take(`${root}/a`), undefined);
  const withoutA = await claimed.subtreeDigests();
  assert.deepEqual([...withoutA.keys()].sort(), [`${root}/b`, `${root}/skipme`, `${root}/skipme/below`]);

  const linked = join(dir, 'linked');
  mkdirSync(join(linked, 'twice'), { recursive: true });
  mkdirSync(join(linked, 'plain'), { recursive: true });
  writeFileSync(join(linked, 'twice', 'x'), 'x');
  linkSync(join(linked, 'twice', 'x'), join(linked, 'twice', 'y'));
  const links = await new ListingPrefetch([linked], { accounts }).subtreeDigests();
  assert.deepEqual([...links.keys()], [join(linked, 'plain')]);

  const cache = join(dir, 'cached');
  mkdirSync(join(cache, 'cache', 'hidden'), { recursive: true });
  writeFileSync(join(cache, 'cache', 'CACHEDIR.TAG'), `${CACHEDIR_TAG_SIGNATURE}\n`);
  const tagged = new ListingPrefetch([cache], { accounts, excludes: await Excludes.compile({ excludeCaches: true }) });
  const cached = await tagged.subtreeDigests();
  assert.equal(tagged.listed, 2, 'nothing below the tagged cache is listed');
  assert.deepEqual([...cached.keys()].sort(), [cache, join(cache, 'cache')]);
});

test('digests list past the kept listings\' budget, up to a number of directories; a full backup\'s listing stops at the budget', async () => {
  const digesting = new ListingPrefetch([root], { accounts, maxBytes: 1, concurrency: 1 });
  const digests = await digesting.subtreeDigests();
  assert.equal(digesting.listed, directories.length, 'every directory listed');
  assert.equal(digests.size, directories.length);
  assert.ok(digesting.take(root) !== undefined, 'the listing within the budget is kept');
  assert.equal(digesting.take(`${root}/b`), undefined, 'those past it are not');

  const limited = new ListingPrefetch([root], { accounts, concurrency: 1, maxDirectories: 3 });
  const some = await limited.subtreeDigests();
  // Breadth first: the root, then a, b (the third); skipme is listed but digests stopped before it.
  assert.deepEqual([...some.keys()], [`${root}/b`], 'only the subtree listed whole');

  const unneeded = new ListingPrefetch([root], { accounts, maxBytes: 1, concurrency: 1 });
  unneeded.digestsUnneeded();
  await unneeded.whenIdle();
  assert.equal(unneeded.listed, 1, 'the root, then the budget is spent');
  assert.equal((await unneeded.subtreeDigests()).size, 0);
});
