import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Excludes } from './excludes.js';
import { ListingPrefetch } from './listing-prefetch.js';
import { listDirectory, type DirectoryScan } from './scan-directory.js';

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
