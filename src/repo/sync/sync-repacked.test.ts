/**
 * `coffer sync` between format 2 repositories with the same keys of a snapshot a repacking
 * prune moved (docs/repository-format.md §19.7, whole-packs.ts, chunk-transfer.ts), on real
 * local repositories, the source's backend counting its reads: the chunks are taken at their
 * places now, so the pack the prune wrote is copied whole like the snapshot's own (nothing is
 * re-packed), no read goes to the removed pack, and the copy restores byte for byte and
 * verifies with --read-data.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { restoreSnapshot } from '../../restore/index.js';
import { makeTempDir, repackRepository, rewriteFrames, seededBytes } from '../../testing/index.js';
import { ForwardingBackend } from '../backend/forwarding-backend.js';
import { LocalBackend } from '../backend/local-backend.js';
import { DiskIndexReader } from '../disk-index.js';
import { isZeroEntry } from '../format/index-page.js';
import { initRepository, openRepository, type Repository } from '../repository.js';
import { listSnapshots, type Snapshot } from '../snapshots.js';
import { verifyRepository } from '../verify.js';
import { syncSnapshots } from './sync-snapshots.js';

const KiB = 1024;
const BLOCK = 64 * KiB;
/** 64 blocks: 8 frames of 8 in one pack. */
const first = seededBytes(81, 64 * BLOCK);
/** Frames 0 and 4 rewritten: 25 % of the first pack unused once the first snapshot is forgotten. */
const second = rewriteFrames(first, { frames: [0, 4], frameBytes: 8 * BLOCK, seed: 90 });

/** Records the key of every read (whole or ranged). */
class CountingBackend extends ForwardingBackend {
  readonly reads: string[] = [];
  override getRange(key: string, offset: number, length: number): Promise<Buffer> {
    this.reads.push(key);
    return super.getRange(key, offset, length);
  }
  override get(key: string): Promise<Buffer> {
    this.reads.push(key);
    return super.get(key);
  }
}

let work: { path: string; remove(): Promise<void> };
/** Pack keys the prune removed. */
let removed: ReadonlySet<string>;
const opened: Repository[] = [];
let made = 0;

async function newRepo(): Promise<string> {
  const root = join(work.path, `repo${made++}`);
  await initRepository(new LocalBackend(root), { passphrase: null, format: 2, kdf: { N: 1024, r: 8, p: 1 }, blockSize: BLOCK });
  return root;
}

async function open(root: string): Promise<{ repo: Repository; backend: CountingBackend }> {
  const backend = new CountingBackend(new LocalBackend(root));
  const repo = await openRepository(backend, { threads: 2 });
  opened.push(repo);
  return { repo, backend };
}

async function packKeys(repo: Repository): Promise<Set<string>> {
  const keys = new Set<string>();
  for await (const entry of repo.backend.list('packs/')) keys.add(entry.key);
  return keys;
}

async function only(repo: Repository): Promise<Snapshot> {
  const snapshots = await listSnapshots(repo);
  assert.equal(snapshots.length, 1);
  return snapshots[0] as Snapshot;
}

let sourceRoot: string;

before(async () => {
  work = await makeTempDir('coffer-sync-repacked');
  sourceRoot = await newRepo();
  const { repo } = await open(sourceRoot);
  const repacked = await repackRepository(repo, { versions: [first, second], imageDir: work.path });
  assert.equal(repacked.report.packs?.packsRepacked, 1, 'the first pack, 25 % unused, is repacked');
  removed = new Set(repacked.removed.keys());
  assert.equal(removed.size, 1);
});
after(async () => {
  for (const repo of opened) await repo.close();
  await work?.remove();
});

test('a same-keys sync of a repacked snapshot copies the prune\'s pack whole, re-packs nothing, reads no removed pack; the copy restores byte for byte', async () => {
  const { repo: src, backend } = await open(sourceRoot);
  const { repo: dst } = await open(await newRepo());
  const report = await syncSnapshots(src, dst, { now: () => new Date('2026-11-26T00:00:00Z') });
  assert.deepEqual([report.sameKeys, report.copied, report.failed], [true, 1, 0], JSON.stringify(report.snapshots));
  assert.deepEqual([report.packsCopied, report.packsWritten], [2, 0], 'the snapshot\'s own pack and the prune\'s, both as stored');
  assert.deepEqual(await packKeys(dst), await packKeys(src), 'the same pack objects');
  assert.deepEqual(backend.reads.filter((key) => removed.has(key)), [], 'no read of the removed pack');

  const copy = await only(dst);
  const disk = copy.disks[0];
  assert.ok(disk !== undefined);
  const stored = await packKeys(dst);
  const reader = new DiskIndexReader(dst, disk);
  for (let page = 0; page < disk.pages.length; page++) {
    for (const entry of await reader.rawPage(page)) {
      if (isZeroEntry(entry)) continue;
      const hex = entry.subarray(32, 64).toString('hex');
      assert.ok(stored.has(`packs/${hex.slice(0, 2)}/${hex}`), 'every entry of the copy names a pack the destination holds');
    }
  }
  const to = join(work.path, 'restored.raw');
  await restoreSnapshot(dst, copy, { to });
  assert.ok((await readFile(to)).equals(second), 'byte for byte');
  assert.deepEqual((await verifyRepository(dst, { readData: true, now: () => new Date('2026-11-26T00:00:00Z') })).damaged, []);
});
