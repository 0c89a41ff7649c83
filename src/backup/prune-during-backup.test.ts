/**
 * A prune and a backup at the same time, with the prune generation (docs/repository-format.md
 * §19.11, docs/concurrency.md), on real local format 2 repositories:
 *
 * - the lease protocol holds: a prune started while a backup runs waits for it; the backup's
 *   snapshot records the generation it saw (the one before the prune), so the next incremental
 *   reads the prune's record and writes its parent's repacked entries at their current places;
 * - the protocol failed (the backup's lease is one the prune cannot see, as when a prune
 *   presumes a frozen backup dead and a clock lets it finish): the prune removes a pack after
 *   the backup read the generation. The new snapshot then names the removed pack: it restores
 *   and verifies all the same (a slower read, through the segments), and the next incremental
 *   brings its entries to their current places;
 * - a prune by a Coffer older than the generation (it writes no record): incrementals copy the
 *   stale entries until a prune of this version runs, whose record names the packs the
 *   snapshots name that are gone already; the next incremental then brings them to their places.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  acquireBackupLease,
  deleteSnapshot,
  DiskIndexReader,
  ForwardingBackend,
  initRepository,
  isZeroEntry,
  LocalBackend,
  openRepository,
  pruneRepository,
  verifyRepository,
  type Backend,
  type BackendEntry,
  type PruneReport,
  type Repository,
  type Snapshot,
} from '../repo/index.js';
import { restoreSnapshot } from '../restore/index.js';
import { openImageSource } from '../source/index.js';
import { makeTempDir, repackRepository, rewriteFrames, seededBytes } from '../testing/index.js';
import { backupVm, type BackupOptions } from './backup-vm.js';

const KiB = 1024;
const BLOCK = 64 * KiB;
/** 64 blocks: one pack. The second rewrites 2 of its 8 frames: once the first is forgotten, 25 % of that pack is unused and prune repacks it. */
const first = seededBytes(81, 64 * BLOCK);
const second = rewriteFrames(first, { frames: [0, 4], frameBytes: 8 * BLOCK, seed: 90 });
const third = rewriteFrames(second, { frames: [2], frameBytes: 8 * BLOCK, seed: 97 });

/** Runs `onListed` once, after the next listing of `removed-packs/` was taken and before the lister sees it. */
class PausingBackend extends ForwardingBackend {
  onListed: (() => Promise<void>) | undefined;
  override async *list(prefix: string): AsyncIterable<BackendEntry> {
    const entries: BackendEntry[] = [];
    for await (const entry of super.list(prefix)) entries.push(entry);
    const hook = prefix === 'removed-packs/' ? this.onListed : undefined;
    if (hook !== undefined) {
      this.onListed = undefined;
      await hook();
    }
    yield* entries;
  }
}

let work: { path: string; remove(): Promise<void> };
const opened: Repository[] = [];
before(async () => {
  work = await makeTempDir('coffer-prune-during-backup');
});
after(async () => {
  for (const repo of opened) await repo.close();
  await work?.remove();
});

async function repository(name: string): Promise<{ root: string; open(): Promise<{ repo: Repository; backend: PausingBackend }> }> {
  const root = join(work.path, name);
  await initRepository(new LocalBackend(root), { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: BLOCK, format: 2 });
  return {
    root,
    async open() {
      const backend = new PausingBackend(new LocalBackend(root) as Backend);
      const repo = await openRepository(backend, { passphrase: 'pw', threads: 2 });
      opened.push(repo);
      return { repo, backend };
    },
  };
}

async function backup(repo: Repository, bytes: Buffer, options: BackupOptions = {}): Promise<Snapshot> {
  const image = join(work.path, `disk-${Math.random().toString(16).slice(2)}.raw`);
  await writeFile(image, bytes);
  const source = await openImageSource('vm', [image]);
  try {
    return await backupVm(repo, source, options);
  } finally {
    await source.close();
  }
}

/** Packs (hex) the snapshot's entries name that are not stored. */
async function missingPacksNamed(repo: Repository, snapshot: Snapshot): Promise<string[]> {
  const stored = new Set<string>();
  for await (const entry of repo.backend.list('packs/')) stored.add(entry.key.slice(entry.key.lastIndexOf('/') + 1));
  const disk = snapshot.disks[0];
  assert.ok(disk !== undefined);
  const reader = new DiskIndexReader(repo, disk);
  const missing: string[] = [];
  for (let page = 0; page < disk.pages.length; page++) {
    for (const entry of await reader.rawPage(page)) {
      const pack = entry.subarray(32, 64).toString('hex');
      if (!isZeroEntry(entry) && !stored.has(pack)) missing.push(pack);
    }
  }
  return missing;
}

/** Two backups, the first forgotten: a prune now repacks the pack the second's entries name. */
async function parentToRepack(repo: Repository): Promise<Snapshot> {
  const old = await backup(repo, first);
  const parent = await backup(repo, second);
  await deleteSnapshot(repo, old.id);
  return parent;
}

async function restoresAs(repo: Repository, snapshot: Snapshot, bytes: Buffer): Promise<void> {
  const to = join(work.path, `restored-${snapshot.id.slice(0, 8)}.raw`);
  await restoreSnapshot(repo, snapshot, { to });
  assert.ok((await readFile(to)).equals(bytes), 'byte for byte');
}

test('a prune started during a backup waits for it; the next incremental reads its record and names no removed pack', async () => {
  const { open } = await repository('leased');
  const { repo, backend } = await open();
  const parent = await parentToRepack(repo);
  let pruning: Promise<PruneReport> | undefined;
  let waited = false;
  // Once the backup (lease held) has read the generation, a prune starts: it must wait.
  backend.onListed = async () => {
    const other = await open();
    let told: () => void = () => {};
    const waiting = new Promise<void>((resolve) => (told = resolve));
    pruning = pruneRepository(other.repo, {
      pollMs: 20,
      onProgress: (p) => {
        if (p.phase !== 'waiting') return;
        waited = true;
        told();
      },
    });
    await waiting;
  };
  const during = await backup(repo, third);
  assert.ok(pruning !== undefined && waited, 'the prune waited for the backup');
  const report = await pruning;
  assert.equal(report.packs?.packsRepacked, 1, 'after the backup, the prune repacked the parent\'s pack');
  assert.equal(during.parent, parent.id);
  assert.equal(during.prunedThrough, 'none', 'the snapshot records the generation before the prune');
  assert.ok((await missingPacksNamed(repo, during)).length > 0, 'it names the pack the prune removed after it');

  const next = await backup((await open()).repo, third);
  assert.equal(next.parent, during.id);
  assert.deepEqual(await missingPacksNamed(repo, next), [], 'the next incremental names no removed pack');
  assert.notEqual(next.prunedThrough, 'none');
  await restoresAs(repo, next, third);
});

test('a prune that removes a pack after the backup read the generation (lease protocol bypassed) leaves a snapshot that only reads slower', async () => {
  const { open } = await repository('unleased');
  const { repo, backend } = await open();
  const parent = await parentToRepack(repo);
  // A lease in another repository: this prune cannot see it, as one that presumed it dead.
  const elsewhere = await (await repository('elsewhere')).open();
  const lease = await acquireBackupLease(elsewhere.repo);
  let report: PruneReport | undefined;
  backend.onListed = async () => {
    report = await pruneRepository((await open()).repo, { waitMs: 0 });
  };
  let during: Snapshot;
  try {
    during = await backup(repo, third, { lease });
  } finally {
    await lease.release();
  }
  assert.equal(report?.packs?.packsRepacked, 1, 'the prune repacked the parent\'s pack while the backup ran');
  assert.equal(during.parent, parent.id);
  assert.equal(during.prunedThrough, 'none', 'the generation the backup saw: before the prune');
  assert.ok((await missingPacksNamed(repo, during)).length > 0, 'the snapshot names the removed pack: stale hints');

  // Readers resolve the stale entries through the segments: slower, never a failure.
  const reader = await open();
  await restoresAs(reader.repo, during, third);
  const verified = await verifyRepository(reader.repo, { readData: true, now: () => new Date() });
  assert.deepEqual(verified.damaged, [], 'verify --read-data finds nothing damaged');
  const listed = await verifyRepository(reader.repo, { readData: false, now: () => new Date() });
  assert.deepEqual(listed.damaged, [], 'nor does verify without reading the data');

  // The next incremental sees the record after the mark and brings the entries to their places.
  const next = await backup((await open()).repo, third);
  assert.equal(next.parent, during.id);
  assert.deepEqual(await missingPacksNamed(repo, next), [], 'the next incremental names no removed pack');
  await restoresAs(repo, next, third);
});

test('after a prune that wrote no record (an older Coffer\'s), the next prune of this version records the packs already gone, and the incremental after it heals', async () => {
  const { open } = await repository('older');
  const { repo } = await open();
  const repacked = await repackRepository(repo, { versions: [first, second], imageDir: work.path });
  assert.equal(repacked.report.packs?.packsRepacked, 1);
  // As if that prune were older than the records: none is left.
  for await (const entry of repo.backend.list('removed-packs/')) await repo.backend.delete(entry.key);
  const blind = await backup(repo, third);
  assert.equal(blind.parent, repacked.kept[0]?.id);
  assert.ok((await missingPacksNamed(repo, blind)).length > 0, 'with no record to go by, the stale entries are copied');
  await restoresAs(repo, blind, third);

  // A prune of this version that removes something else (another VM's pack, forgotten).
  const other = await backup(repo, seededBytes(120, 16 * BLOCK), {});
  await deleteSnapshot(repo, other.id);
  const report = await pruneRepository(repo);
  assert.equal(report.packs?.packsDeleted, 1, 'the other VM\'s pack');
  const healed = await backup((await open()).repo, third);
  assert.equal(healed.parent, blind.id);
  assert.deepEqual(await missingPacksNamed(repo, healed), [], 'the record named the packs already gone: the incremental names none');
  await restoresAs(repo, healed, third);
});
