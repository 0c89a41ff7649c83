/**
 * An incremental whose parent a repacking prune moved (docs/repository-format.md §19.7,
 * repo/current-places.ts), on a real local format 2 repository whose backend counts its calls:
 * the new snapshot's index names the chunks' current places, not the removed pack its parent
 * still names; it restores byte for byte without a request to the removed pack; the
 * incremental learns which packs were removed from the prune's record alone (no `has` per
 * pack, §19.11); and an incremental with no prune since its parent asks nothing about its
 * packs (one listing of `removed-packs/`). Without a record to go by (a parent written before
 * them), the packs of a parent's page are asked at once.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CurrentPlaces, DiskIndexReader, LocalBackend, initRepository, isZeroEntry, openRepository, type Backend, type BackendEntry, type Repository, type Snapshot } from '../repo/index.js';
import { restoreSnapshot } from '../restore/index.js';
import { openImageSource } from '../source/index.js';
import { makeTempDir, RangedReadLog, repackRepository, rewriteFrames, seededBytes } from '../testing/index.js';
import { backupVm } from './backup-vm.js';

const KiB = 1024;
const BLOCK = 64 * KiB;
/** 64 blocks: 8 frames of 8 in one pack. */
const first = seededBytes(51, 64 * BLOCK);
/** Frames 0 and 4 rewritten: 25 % of the first pack unused once the first snapshot is forgotten. */
const second = rewriteFrames(first, { frames: [0, 4], frameBytes: 8 * BLOCK, seed: 60 });
/** The third backup: frame 2 rewritten too; frames 1, 3, 5, 6, 7 are the parent's, repacked. */
const third = rewriteFrames(second, { frames: [2], frameBytes: 8 * BLOCK, seed: 68 });

/** Records every ranged read (and whether it failed), `has`, `get` and `list` by key. */
class CountingBackend extends RangedReadLog {
  readonly calls: string[] = [];
  override has(key: string): Promise<boolean> {
    this.calls.push(`has ${key}`);
    return super.has(key);
  }
  override get(key: string): Promise<Buffer> {
    this.calls.push(`get ${key}`);
    return super.get(key);
  }
  override list(prefix: string): AsyncIterable<BackendEntry> {
    this.calls.push(`list ${prefix}`);
    return super.list(prefix);
  }
}

let work: { path: string; remove(): Promise<void> };
let root: string;
let image: string;
/** Pack ids (hex) the prune removed. */
let removed: ReadonlySet<string>;
const opened: Repository[] = [];

async function open(): Promise<{ repo: Repository; backend: CountingBackend }> {
  const backend = new CountingBackend(new LocalBackend(root) as Backend);
  const repo = await openRepository(backend, { passphrase: 'pw', threads: 2 });
  opened.push(repo);
  return { repo, backend };
}

async function backup(repo: Repository, bytes: Buffer): Promise<Snapshot> {
  await writeFile(image, bytes);
  const source = await openImageSource('vm', [image]);
  try {
    return await backupVm(repo, source);
  } finally {
    await source.close();
  }
}

/** The pack (hex) each located entry of the snapshot's disk names; zero blocks left out. */
async function packsNamed(repo: Repository, snapshot: Snapshot): Promise<string[]> {
  const disk = snapshot.disks[0];
  assert.ok(disk !== undefined);
  const reader = new DiskIndexReader(repo, disk);
  const packs: string[] = [];
  for (let page = 0; page < disk.pages.length; page++) {
    for (const entry of await reader.rawPage(page)) if (!isZeroEntry(entry)) packs.push(entry.subarray(32, 64).toString('hex'));
  }
  return packs;
}

async function packIds(repo: Repository): Promise<Set<string>> {
  const ids = new Set<string>();
  for await (const entry of repo.backend.list('packs/')) ids.add(entry.key.slice(entry.key.lastIndexOf('/') + 1));
  return ids;
}

let secondSnapshot: Snapshot;
let thirdSnapshot: Snapshot;
/** The backend calls of the third backup (the first after the prune). */
let thirdCalls: string[];

before(async () => {
  work = await makeTempDir('coffer-moved-parent');
  root = join(work.path, 'repo');
  image = join(work.path, 'disk.raw');
  await initRepository(new LocalBackend(root), { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: BLOCK, format: 2 });
  const { repo } = await open();
  const repacked = await repackRepository(repo, { versions: [first, second], imageDir: work.path });
  assert.equal(repacked.report.packs?.packsRepacked, 1, 'the first pack, 25 % unused, is repacked');
  secondSnapshot = repacked.kept[0] as Snapshot;
  removed = new Set([...repacked.removed.keys()].map((key) => key.slice(key.lastIndexOf('/') + 1)));
  assert.equal(removed.size, 1);
  // The third backup runs in a repository opened afresh (no moved chunk known yet).
  const fresh = await open();
  thirdSnapshot = await backup(fresh.repo, third);
  thirdCalls = fresh.backend.calls;
});
after(async () => {
  for (const repo of opened) await repo.close();
  await work?.remove();
});

test('an incremental of a repacked parent writes its chunks\' current places: its index names no removed pack', async () => {
  const { repo } = await open();
  assert.equal(thirdSnapshot.parent, secondSnapshot.id);
  const parentPacks = await packsNamed(repo, secondSnapshot);
  assert.equal(parentPacks.filter((pack) => removed.has(pack)).length, 48, 'the parent still names the removed pack for its 6 repacked frames');
  const packs = await packsNamed(repo, thirdSnapshot);
  assert.equal(packs.length, 64);
  assert.deepEqual(packs.filter((pack) => removed.has(pack)), [], 'no entry names the removed pack');
  const stored = await packIds(repo);
  assert.deepEqual(packs.filter((pack) => !stored.has(pack)), [], 'every entry names a stored pack');
});

test('the incremental restores byte for byte without a request to the removed pack', async () => {
  const { repo, backend } = await open();
  const to = join(work.path, 'restored.raw');
  await restoreSnapshot(repo, thirdSnapshot, { to });
  assert.ok((await readFile(to)).equals(third), 'byte for byte');
  const toRemoved = backend.reads.filter((read) => removed.has(read.key.slice(read.key.lastIndexOf('/') + 1)));
  assert.deepEqual(toRemoved, [], 'no read of the removed pack');
  assert.deepEqual(backend.reads.filter((read) => read.failed), [], 'no failed read');
});

test('the incremental after the prune learns the removed pack from the prune\'s record: no pack is asked for', async () => {
  const records = thirdCalls.filter((call) => call.includes('removed-packs/'));
  assert.equal(records.length, 2, `one listing, one record read: ${records.join(', ')}`);
  assert.equal(records[0], 'list removed-packs/');
  assert.match(records[1] as string, /^get removed-packs\/000000000001\.[0-9a-f]{32}$/);
  assert.equal(secondSnapshot.prunedThrough, 'none', 'the parent was written before any prune');
  assert.equal(thirdSnapshot.prunedThrough, (records[1] as string).slice('get removed-packs/'.length), 'the incremental records the prune\'s generation');
  assert.deepEqual(thirdCalls.filter((call) => call.startsWith('has packs/')), [], 'no existence check of a pack');
});

test('an incremental with no prune since its parent asks nothing about its packs, and lists or loads nothing more', async () => {
  const { repo, backend } = await open();
  const fourth = await backup(repo, third);
  assert.equal(fourth.parent, thirdSnapshot.id);
  assert.deepEqual(backend.calls.filter((call) => call.includes('packs/')), ['list removed-packs/'], 'one listing of the records; no pack asked for');
  assert.deepEqual(backend.calls.filter((call) => call.includes('segments')), [], 'no segment listed or read');
  assert.deepEqual(await packsNamed(repo, fourth), await packsNamed(repo, thirdSnapshot), 'the parent\'s entries, as they are');
  assert.equal(fourth.prunedThrough, thirdSnapshot.prunedThrough);
});

test('without a record to go by (a parent written before them), the packs of a parent\'s page are checked together when the page is first needed', async () => {
  const { repo, backend } = await open();
  const disk = thirdSnapshot.disks[0];
  assert.ok(disk !== undefined);
  const page = await new DiskIndexReader(repo, disk).rawPage(0);
  const places = new CurrentPlaces(repo);
  places.expect(page);
  const last = page.at(-1);
  assert.ok(last !== undefined);
  assert.equal(await places.of(last), last, 'a stored pack: the entry as it is');
  const distinct = new Set(await packsNamed(repo, thirdSnapshot));
  assert.equal(distinct.size, 3);
  assert.equal(backend.calls.filter((call) => call.startsWith('has packs/')).length, 3, 'every pack of the page asked, once');
});
