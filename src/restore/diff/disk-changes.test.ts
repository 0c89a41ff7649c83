/**
 * diskChanges on indexes written by the repository's own writer: the changed blocks, grown
 * and zeroed ones, the pages skipped because both snapshots share them, and indexes whose
 * pages cover different stretches (compared entry by entry).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { DiskIndexWriter, initRepository, LocalBackend, openRepository, ZERO_ENTRY, type DiskRecord, type Repository } from '../../repo/index.js';
import { makeTempDir } from '../../testing/index.js';
import { diskChanges } from './disk-changes.js';

const BLOCK = 64 * 1024;
const PER_PAGE = 16;

let root: { path: string; remove(): Promise<void> };
let repo: Repository;

before(async () => {
  root = await makeTempDir('coffer-disk-changes');
  const local = new LocalBackend(`${root.path}/repo`);
  await initRepository(local, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: BLOCK, format: 1 });
  repo = await openRepository(local, { passphrase: 'pw', threads: 1 });
});
after(async () => {
  await repo?.close();
  await root.remove();
});

const id = (n: number): Buffer => createHash('sha256').update(`chunk ${n}`).digest();

/** A disk of `blocks` blocks whose entries `entryOf` gives, indexed `perPage` entries a page. */
async function disk(blocks: number, entryOf: (block: number) => Buffer, perPage = PER_PAGE, blockSize = BLOCK): Promise<DiskRecord> {
  const writer = new DiskIndexWriter(repo, blocks * blockSize, blockSize, perPage);
  for (let block = 0; block < blocks; block++) writer.set(block, entryOf(block));
  return { name: 'disk0', size: blocks * blockSize, sourceFormat: 'raw', source: '', blockSize, entriesPerPage: perPage, pages: await writer.finish() };
}

test('changed, zeroed and grown blocks as merged ranges; pages both share are not read', async () => {
  const a = await disk(160, (b) => (b >= 150 ? ZERO_ENTRY : id(b)));
  const b = await disk(170, (b) => (b === 17 || b === 18 ? id(1000 + b) : b === 40 ? ZERO_ENTRY : b === 165 ? id(165) : b >= 150 ? ZERO_ENTRY : id(b)));
  const changes = await diskChanges(repo, a, b);
  assert.deepEqual(changes.ranges, [
    { offset: 17 * BLOCK, length: 2 * BLOCK },
    { offset: 40 * BLOCK, length: BLOCK },
    { offset: 165 * BLOCK, length: BLOCK },
  ]);
  assert.equal(changes.changedBlocks, 4);
  assert.equal(changes.changedBytes, 4 * BLOCK);
  assert.equal(changes.zeroedBlocks, 1);
  // Pages 1 and 2 of both, and page 10 of the grown disk; pages 0 and 3-9 are the same objects.
  assert.equal(changes.pagesRead, 5);
  assert.equal(changes.pagesSkipped, 16);

  const back = await diskChanges(repo, b, a);
  assert.deepEqual(back.ranges, changes.ranges, 'the other way round: the same blocks');
  assert.equal(back.zeroedBlocks, 1, 'block 165, lost with the shrink (40 holds data again)');
});

test('indexes paged differently are compared entry by entry, with the same result', async () => {
  const a = await disk(100, (b) => id(b));
  const b = await disk(100, (b) => (b === 63 ? id(5000) : id(b)), 8);
  const changes = await diskChanges(repo, a, b);
  assert.deepEqual(changes.ranges, [{ offset: 63 * BLOCK, length: BLOCK }]);
  assert.equal(changes.changedBlocks, 1);
});

test('disks stored in blocks of different sizes cannot be compared: E_USAGE', async () => {
  const a = await disk(4, (b) => id(b));
  const b = await disk(2, (b) => id(b), PER_PAGE, 2 * BLOCK);
  await assert.rejects(diskChanges(repo, a, b), (error: Error & { code?: string }) => error.code === 'E_USAGE' && /blocks of different sizes/.test(error.message));
});
