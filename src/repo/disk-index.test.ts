import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { makeTempDir } from '../testing/index.js';
import type { Backend } from './backend/backend.js';
import { LocalBackend } from './backend/local-backend.js';
import { DiskIndexWriter } from './disk-index.js';
import { encodeLocatedEntry } from './format/located-entry.js';
import { ZERO_ENTRY } from './format/index-page.js';
import { INDEXES_PREFIX } from './layout.js';
import { initRepository, openRepository, type Repository } from './repository.js';
import type { Snapshot } from './snapshots.js';
import { walkBlocks } from './walk.js';

const BLOCK = 64 * 1024;
const PER_PAGE = 16;

let root: { path: string; remove(): Promise<void> };
const repos: Repository[] = [];

before(async () => {
  root = await makeTempDir('coffer-disk-index');
});
after(async () => {
  await Promise.allSettled(repos.map((repo) => repo.close()));
  await root.remove();
});

async function repository(name: string, wrap: (backend: Backend) => Backend = (b) => b): Promise<{ repo: Repository; local: LocalBackend }> {
  const local = new LocalBackend(`${root.path}/${name}`);
  await initRepository(local, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: BLOCK, format: 2 });
  const repo = await openRepository(wrap(local), { passphrase: 'pw', threads: 1 });
  repos.push(repo);
  return { repo, local };
}

async function indexObjects(backend: Backend): Promise<number> {
  let n = 0;
  for await (const _ of backend.list(INDEXES_PREFIX)) n++;
  return n;
}

/** A located entry naming a distinct (made-up) chunk. */
function entry(i: number): Buffer {
  const id = createHash('sha256').update(`chunk ${i}`).digest();
  return encodeLocatedEntry({ id, pack: id, frameOffset: 8, frameLength: 100, chunkOffset: 44, chunkLength: BLOCK });
}

test('a disk of zeros: every page is the same page, stored once, and the index reads back', async () => {
  const { repo, local } = await repository('zeros');
  const pages = 40;
  const writer = new DiskIndexWriter(repo, pages * PER_PAGE * BLOCK, BLOCK, PER_PAGE);
  for (let block = 0; block < pages * PER_PAGE; block++) writer.set(block, ZERO_ENTRY);
  const ids = await writer.finish();
  assert.equal(ids.length, pages);
  assert.equal(new Set(ids).size, 1, 'one page of zeros');
  assert.equal(await indexObjects(local), 1);
  assert.ok(writer.bytesStored > 0);
});

test('room(): at most 8 pages are being stored at once; the rest of the backup waits', async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let waiting = 0;
  const { repo } = await repository('gated', (inner) => ({
    ...inner,
    location: inner.location,
    has: async (key: string) => {
      if (key.startsWith(INDEXES_PREFIX)) {
        waiting++;
        await gate;
      }
      return inner.has(key);
    },
    get: (key: string) => inner.get(key),
    put: (key: string, data: Uint8Array) => inner.put(key, data),
    delete: (key: string) => inner.delete(key),
    list: (prefix: string) => inner.list(prefix),
    sync: () => inner.sync(),
  }));
  const pages = 20;
  const writer = new DiskIndexWriter(repo, pages * PER_PAGE * BLOCK, BLOCK, PER_PAGE);
  let block = 0;
  const fillPage = (): void => {
    for (const end = block + PER_PAGE; block < end; block++) writer.set(block, entry(block));
  };
  for (let page = 0; page < 8; page++) {
    await writer.room();
    fillPage();
  }
  let roomMade = false;
  const room = writer.room().then(() => (roomMade = true));
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(roomMade, false, 'a ninth page waits while eight are being stored');
  assert.equal(waiting, 8);
  release();
  await room;
  while (block < pages * PER_PAGE) {
    await writer.room();
    fillPage();
  }
  const ids = await writer.finish();
  assert.equal(new Set(ids).size, pages);
});

test('walkBlocks with distinctPages visits a page once however often disks repeat it; a missing page is reported at every occurrence', async () => {
  const { repo, local } = await repository('walk');
  const writer = new DiskIndexWriter(repo, 6 * PER_PAGE * BLOCK, BLOCK, PER_PAGE);
  for (let block = 0; block < 6 * PER_PAGE; block++) writer.set(block, block < 2 * PER_PAGE ? entry(block) : ZERO_ENTRY);
  const pages = await writer.finish(); // two pages of chunks, four equal pages of zeros
  const missing = 'ab'.repeat(32);
  const disk = (name: string, ids: string[]) => ({ name, size: ids.length * PER_PAGE * BLOCK, sourceFormat: 'raw', source: name, blockSize: BLOCK, entriesPerPage: PER_PAGE, pages: ids });
  const snapshot = (id: string, ids: string[]) => ({ id, disks: [disk('disk0', ids)] }) as unknown as Snapshot;
  const snapshots = [snapshot('s1', pages), snapshot('s2', [missing, pages[1] as string, missing, ...pages.slice(3)])];
  const count = async (distinctPages: boolean) => {
    let visits = 0;
    const damage: string[] = [];
    await walkBlocks(repo, snapshots, () => visits++, (d) => damage.push(`${d.snapshot.id}@${d.offset}`), { distinctPages });
    return { visits, damage };
  };
  const damage = ['s2@0', `s2@${2 * PER_PAGE * BLOCK}`];
  assert.deepEqual(await count(false), { visits: 10 * PER_PAGE, damage });
  assert.deepEqual(await count(true), { visits: 3 * PER_PAGE, damage });
  assert.equal(await indexObjects(local), 3);
});
