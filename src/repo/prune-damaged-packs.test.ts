/**
 * Prune of a format 2 repository whose pack verify found damaged (pack-plan.ts, dead-copies.ts,
 * pack-sweep.ts): once a backup stored the damaged frame's chunks again, prune repacks the
 * damaged pack without them and retires their quarantine markers (quarantine-retire.ts); while
 * the damaged copy is the only one, the pack and the markers stay.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CofferError } from '../errors/index.js';
import { restoreSnapshot } from '../restore/index.js';
import { backupFile, flipByte, makeTempDir, seededBytes, withRepo } from '../testing/index.js';
import type { Backend } from './backend/backend.js';
import { ForwardingBackend } from './backend/forwarding-backend.js';
import { LocalBackend } from './backend/local-backend.js';
import type { PackTrailer } from './format/pack.js';
import { readTrailer } from './pack-plan.js';
import { listQuarantined } from './damage.js';
import { pruneRepository } from './prune.js';
import { initRepository, type Repository } from './repository.js';
import { deleteSnapshot, type Snapshot } from './snapshots.js';
import { verifyRepository } from './verify.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 64 * KiB;
let work: { path: string; remove(): Promise<void> };
let made = 0;

before(async () => {
  work = await makeTempDir('coffer-prune-damaged');
});
after(() => work.remove());

async function newRepo(): Promise<string> {
  const root = join(work.path, `repo-${++made}`);
  await initRepository(new LocalBackend(root), { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: BLOCK, format: 2 });
  return root;
}

async function image(data: Buffer): Promise<string> {
  const path = join(work.path, `disk-${++made}.raw`);
  await writeFile(path, data);
  return path;
}

async function packFiles(root: string): Promise<string[]> {
  return (await readdir(join(root, 'packs'), { recursive: true })).filter((name) => /[0-9a-f]{64}$/.test(name)).map((name) => `packs/${name}`).sort();
}

async function trailerOf(repo: Repository, root: string, key: string): Promise<PackTrailer> {
  return readTrailer(repo, key, (await readFile(join(root, key))).length);
}

/** Flips one byte in the middle of frame `frame` of pack `key`: the frame no longer opens. */
async function corruptFrame(root: string, key: string, frame: { offset: number; length: number }): Promise<void> {
  await flipByte(join(root, key), frame.offset + Math.floor(frame.length / 2));
}

/** Chunks held by all packs, counted from their trailers (a chunk in two packs counts twice). */
async function chunksInPacks(repo: Repository, root: string): Promise<number> {
  let count = 0;
  for (const key of await packFiles(root)) count += (await trailerOf(repo, root, key)).chunks.length;
  return count;
}

async function restoresAs(repo: Repository, snapshot: Snapshot, path: string): Promise<boolean> {
  const to = join(work.path, `out-${++made}.raw`);
  await restoreSnapshot(repo, snapshot, { to });
  return (await readFile(to)).equals(await readFile(path));
}

async function damagedIds(repo: Repository): Promise<string[]> {
  const report = await verifyRepository(repo, { readData: true, now: () => new Date() });
  return report.damaged.map((d) => `${d.kind} ${d.id}`).sort();
}

/**
 * A backup of 48 blocks (one pack of 6 frames), whose first frame then goes bad; verify sets
 * its 8 chunks aside, and a second backup of the same disk stores them again in a pack of
 * their own (the heal).
 */
async function healedRepository(repo: Repository, root: string, path: string): Promise<{ first: Snapshot; second: Snapshot; damaged: string; healed: string }> {
  const first = await backupFile(repo, 'vm', path);
  const [damaged] = await packFiles(root);
  assert.ok(damaged !== undefined);
  const trailer = await trailerOf(repo, root, damaged);
  assert.equal(trailer.chunks.length, 48);
  await corruptFrame(root, damaged, trailer.frames[0] as { offset: number; length: number });
  const found = await verifyRepository(repo, { readData: true, now: () => new Date() });
  assert.equal(found.quarantined, 8, 'the frame\'s 8 chunks are set aside');
  const second = await backupFile(repo, 'vm', path);
  assert.equal(second.stats.bytesNew, 8 * BLOCK);
  const healed = (await packFiles(root)).find((key) => key !== damaged);
  assert.ok(healed !== undefined);
  return { first, second, damaged, healed };
}

test('format 2 prune after a heal: the damaged pack is repacked without its damaged frame, and the repository is clean', async () => {
  const root = await newRepo();
  const path = await image(seededBytes(21, 3 * MiB));
  await withRepo(new LocalBackend(root), async (repo) => {
    const { first, second, damaged, healed } = await healedRepository(repo, root, path);
    assert.deepEqual(await damagedIds(repo), []);
    const before = await packFiles(root);
    assert.equal(before.length, 2);

    const dry = await pruneRepository(repo, { dryRun: true });
    assert.deepEqual(
      [dry.packs?.packsDeleted, dry.packs?.packsRepacked, dry.packs?.packsKept, dry.packs?.liveBytesInRepacked, dry.packs?.damagedCopiesDropped, dry.quarantineRetired],
      [0, 1, 1, 40 * BLOCK, 8, 8],
      'the dry run plans the damaged pack\'s repack, without its damaged copies, and the retirement of their markers',
    );
    assert.deepEqual(await packFiles(root), before, 'a dry run changes nothing');
    assert.equal((await listQuarantined(repo)).size, 8, 'a dry run retires no marker');

    const report = await pruneRepository(repo);
    const packs = report.packs;
    assert.ok(packs !== undefined);
    assert.deepEqual(packs.unreadable, []);
    assert.deepEqual(
      [packs.packsBefore, packs.packsDeleted, packs.packsRepacked, packs.packsKept, packs.packsWritten, packs.chunksCopied, packs.framesMoved, packs.framesRecompressed, packs.damagedCopiesDropped],
      [2, 0, 1, 1, 1, 40, 5, 0, 8],
      'the 5 good frames move as they are, the damaged one is dropped',
    );
    const after = await packFiles(root);
    assert.ok(!after.includes(damaged), 'the damaged pack is deleted');
    assert.ok(after.includes(healed), 'the heal\'s pack stays');
    assert.equal(after.length, 2);
    assert.equal(await chunksInPacks(repo, root), 48, 'every used chunk is held once');
    assert.ok(report.bytesFreed > 7 * BLOCK, `${report.bytesFreed} bytes freed: the damaged frame's`);
    assert.equal(report.quarantineRetired, 8, 'the damaged copies are gone: their markers are retired');
    assert.equal((await listQuarantined(repo)).size, 0);

    assert.deepEqual(await damagedIds(repo), []);
    assert.ok(await restoresAs(repo, first, path), 'the first snapshot restores byte for byte');
    assert.ok(await restoresAs(repo, second, path), 'the second snapshot restores byte for byte');

    const again = await pruneRepository(repo);
    assert.deepEqual(
      [again.packs?.packsDeleted, again.packs?.packsRepacked, again.packs?.packsWritten, again.packs?.damagedCopiesDropped, again.packs?.unreadable.length, again.bytesFreed, again.quarantineRetired],
      [0, 0, 0, 0, 0, 0, 0],
      'a second prune changes nothing',
    );
    assert.deepEqual(await packFiles(root), after);
  });
});

test('format 2 prune: a damaged frame whose chunks no backup stored again keeps its pack as it is, reported, and nothing is lost', async () => {
  const root = await newRepo();
  const data = seededBytes(22, 3 * MiB);
  const path = await image(data);
  await withRepo(new LocalBackend(root), async (repo) => {
    const first = await backupFile(repo, 'vm', path);
    const [damaged] = await packFiles(root);
    assert.ok(damaged !== undefined);
    // The second backup replaces the last 12 blocks: forgetting the first leaves the pack 25 % unused.
    const replaced = new Set<string>();
    for (let at = 36 * BLOCK; at < 48 * BLOCK; at += BLOCK) replaced.add(repo.codec.idOf(data.subarray(at, at + BLOCK)).toString('hex'));
    const changed = await image(Buffer.concat([data.subarray(0, 36 * BLOCK), seededBytes(23, 12 * BLOCK)]));
    await backupFile(repo, 'vm', changed);
    // A frame whose 8 chunks the second snapshot still uses goes bad; no backup meets them since.
    const trailer = await trailerOf(repo, root, damaged);
    const frame = trailer.frames.findIndex((_, i) => trailer.chunks.every((c) => c.frame !== i || !replaced.has(c.id.toString('hex'))));
    assert.ok(frame >= 0, 'a frame holds none of the replaced blocks');
    await corruptFrame(root, damaged, trailer.frames[frame] as { offset: number; length: number });
    const lost = await damagedIds(repo);
    assert.equal(lost.length, 8);
    await deleteSnapshot(repo, first.id);
    const before = await packFiles(root);

    const report = await pruneRepository(repo);
    const packs = report.packs;
    assert.ok(packs !== undefined);
    assert.deepEqual(packs.unreadable.map((u) => u.pack), [damaged], 'the pack due for a repack is kept, and said so');
    assert.deepEqual([packs.packsDeleted, packs.packsRepacked, packs.packsKept, packs.packsWritten, packs.damagedCopiesDropped], [0, 0, 2, 0, 0]);
    assert.deepEqual(await packFiles(root), before, 'no pack is removed: the damaged one may hold the only copy');
    assert.deepEqual(await damagedIds(repo), lost, 'nothing more is damaged');
    assert.equal(report.quarantineRetired, 0, 'the damaged copies are still in their pack: the markers stay');
    assert.equal((await listQuarantined(repo)).size, 8);

    const again = await pruneRepository(repo);
    assert.deepEqual(again.packs?.unreadable.map((u) => u.pack), [damaged]);
    assert.deepEqual(await packFiles(root), before);
  });
});

test('format 2 prune: a damaged copy is dead only while another copy reads; when the heal\'s copy went bad too, both packs stay', async () => {
  const root = await newRepo();
  const path = await image(seededBytes(24, 3 * MiB));
  await withRepo(new LocalBackend(root), async (repo) => {
    const { damaged, healed } = await healedRepository(repo, root, path);
    const trailer = await trailerOf(repo, root, healed);
    assert.equal(trailer.frames.length, 1);
    await corruptFrame(root, healed, trailer.frames[0] as { offset: number; length: number });
    const before = await packFiles(root);
    assert.deepEqual(before, [damaged, healed].sort());

    const report = await pruneRepository(repo);
    const packs = report.packs;
    assert.ok(packs !== undefined);
    assert.deepEqual([packs.packsDeleted, packs.packsRepacked, packs.packsKept, packs.packsWritten, packs.damagedCopiesDropped, packs.unreadable.length], [0, 0, 2, 0, 0, 0]);
    assert.deepEqual(await packFiles(root), before, 'neither copy is dropped');
    assert.deepEqual([report.quarantineRetired, (await listQuarantined(repo)).size], [0, 8], 'no copy reads: the markers stay');
  });
});

test('format 2 prune on a full disk (in small steps): the damaged pack is repacked without its damaged frame all the same', async () => {
  const root = await newRepo();
  const path = await image(seededBytes(25, 3 * MiB));
  const { first, second, damaged, healed } = await withRepo(new LocalBackend(root), (repo) => healedRepository(repo, root, path));
  /** The first pack prune writes finds the disk full: prune runs again in small steps. */
  class FullOnce extends ForwardingBackend {
    full = true;
    override put(key: string, data: Uint8Array): Promise<void> {
      if (this.full && key.startsWith('packs/')) {
        this.full = false;
        return Promise.reject(new CofferError('E_NO_SPACE', `no space left to write ${key}`));
      }
      return super.put(key, data);
    }
  }
  await withRepo(new FullOnce(new LocalBackend(root)), async (repo) => {
    const report = await pruneRepository(repo);
    assert.equal(report.spaceReserve?.released, true, 'the second run went in small steps');
    const packs = report.packs;
    assert.ok(packs !== undefined);
    assert.deepEqual(
      [packs.packsDeleted, packs.packsRepacked, packs.packsKept, packs.packsWritten, packs.chunksCopied, packs.damagedCopiesDropped, packs.repacksPostponed, packs.unreadable.length, report.quarantineRetired],
      [0, 1, 1, 1, 40, 8, 0, 0, 8],
    );
    const after = await packFiles(root);
    assert.ok(!after.includes(damaged) && after.includes(healed) && after.length === 2, JSON.stringify(after));
    assert.deepEqual(await damagedIds(repo), []);
    assert.ok(await restoresAs(repo, first, path));
    assert.ok(await restoresAs(repo, second, path));
  });
});

/** Fails like a process killed at that point: the first delete `kills` picks. */
class KilledAt extends ForwardingBackend {
  killed = false;
  constructor(inner: Backend, private readonly kills: (key: string) => boolean) {
    super(inner);
  }
  override delete(key: string): Promise<void> {
    if (!this.killed && this.kills(key)) {
      this.killed = true;
      return Promise.reject(new Error(`killed before deleting ${key}`));
    }
    return super.delete(key);
  }
}

test('format 2 prune killed after its sweep, before the quarantine markers go: every snapshot reads, the markers stay, and the next prune retires them', async () => {
  const root = await newRepo();
  const path = await image(seededBytes(26, 3 * MiB));
  const { first, second, damaged } = await withRepo(new LocalBackend(root), (repo) => healedRepository(repo, root, path));
  const killed = new KilledAt(new LocalBackend(root), (key) => key.startsWith('quarantine/'));
  await withRepo(killed, async (repo) => {
    await assert.rejects(pruneRepository(repo), /killed before deleting quarantine\//);
    assert.ok(!(await packFiles(root)).includes(damaged), 'the sweep was done');
    assert.equal((await listQuarantined(repo)).size, 8);
    assert.deepEqual(await damagedIds(repo), []);
    assert.ok(await restoresAs(repo, first, path));
    assert.ok(await restoresAs(repo, second, path));
    // Until a prune retires the markers, a backup stores the chunks once more: a second good copy.
    const third = await backupFile(repo, 'vm', path);
    assert.equal(third.stats.bytesNew, 8 * BLOCK);

    const report = await pruneRepository(repo);
    assert.equal(report.quarantineRetired, 8, 'every copy reads: the markers are retired');
    assert.equal((await listQuarantined(repo)).size, 0);
    assert.equal((await backupFile(repo, 'vm', path)).stats.bytesNew, 0, 'backups deduplicate against the healed chunks again');
    assert.deepEqual(await damagedIds(repo), []);
    assert.ok(await restoresAs(repo, first, path));
  });
});

test('format 2 prune killed in its sweep, before the damaged pack is deleted: the markers stay, and the next prune finishes and retires them', async () => {
  const root = await newRepo();
  const path = await image(seededBytes(27, 3 * MiB));
  const { first, second, damaged } = await withRepo(new LocalBackend(root), (repo) => healedRepository(repo, root, path));
  await withRepo(new KilledAt(new LocalBackend(root), (key) => key === damaged), async (repo) => {
    await assert.rejects(pruneRepository(repo), /killed before deleting packs\//);
    assert.ok((await packFiles(root)).includes(damaged), 'the damaged pack is still there (no segment names it now)');
    assert.equal((await listQuarantined(repo)).size, 8, 'no marker goes while its damaged copy is stored');
    assert.deepEqual(await damagedIds(repo), []);
    assert.ok(await restoresAs(repo, first, path));

    const report = await pruneRepository(repo);
    assert.ok(!(await packFiles(root)).includes(damaged));
    assert.equal(report.quarantineRetired, 8);
    assert.equal(await chunksInPacks(repo, root), 48, 'every used chunk is held once');
    assert.deepEqual(await damagedIds(repo), []);
    assert.ok(await restoresAs(repo, first, path));
    assert.ok(await restoresAs(repo, second, path));
    assert.equal((await backupFile(repo, 'vm', path)).stats.bytesNew, 0);
  });
});

test('format 2 prune: damaged copies of chunks no snapshot uses any more are dropped even from a pack full enough to keep, and their markers retired', async () => {
  const root = await newRepo();
  const data = seededBytes(28, 3 * MiB);
  const path = await image(data);
  await withRepo(new LocalBackend(root), async (repo) => {
    const first = await backupFile(repo, 'vm', path);
    const [damaged] = await packFiles(root);
    assert.ok(damaged !== undefined);
    const trailer = await trailerOf(repo, root, damaged);
    // The second backup replaces the 8 blocks of the first frame, which then goes bad.
    const inFrame = new Set(trailer.chunks.filter((c) => c.frame === 0).map((c) => c.id.toString('hex')));
    assert.equal(inFrame.size, 8);
    const changed = Buffer.from(data);
    for (let block = 0; block < 48; block++) {
      const at = block * BLOCK;
      if (inFrame.has(repo.codec.idOf(data.subarray(at, at + BLOCK)).toString('hex'))) seededBytes(100 + block, BLOCK).copy(changed, at);
    }
    const changedPath = await image(changed);
    const second = await backupFile(repo, 'vm', changedPath);
    assert.equal(second.stats.bytesNew, 8 * BLOCK);
    await corruptFrame(root, damaged, trailer.frames[0] as { offset: number; length: number });
    assert.equal((await verifyRepository(repo, { readData: true, now: () => new Date() })).quarantined, 8);
    // Forgotten, the first snapshot leaves the damaged chunks unused: 8 of 48, below the repack threshold.
    await deleteSnapshot(repo, first.id);

    const dry = await pruneRepository(repo, { dryRun: true });
    assert.deepEqual([dry.packs?.packsRepacked, dry.packs?.damagedCopiesDropped, dry.quarantineRetired], [1, 8, 8]);
    const report = await pruneRepository(repo);
    const packs = report.packs;
    assert.ok(packs !== undefined);
    assert.deepEqual(
      [packs.packsDeleted, packs.packsRepacked, packs.packsWritten, packs.chunksCopied, packs.framesMoved, packs.damagedCopiesDropped, packs.unreadable.length, report.quarantineRetired],
      [0, 1, 1, 40, 5, 8, 0, 8],
      'the damaged pack is repacked without its damaged frame, and the markers go',
    );
    assert.ok(!(await packFiles(root)).includes(damaged));
    assert.equal((await listQuarantined(repo)).size, 0);
    assert.deepEqual(await damagedIds(repo), []);
    assert.ok(await restoresAs(repo, second, changedPath));
    // The old blocks, met again, are stored again: nothing names a copy of them now.
    const third = await backupFile(repo, 'vm', path);
    assert.equal(third.stats.bytesNew, 8 * BLOCK);
    assert.deepEqual(await damagedIds(repo), []);
    assert.ok(await restoresAs(repo, third, path));
  });
});
