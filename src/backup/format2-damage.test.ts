import assert from 'node:assert/strict';
import { open, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { isCofferError } from '../errors/index.js';
import {
  initRepository,
  LocalBackend,
  openRepository,
  rebuildChunkIndex,
  verifyRepository,
  verifyStored,
  type Repository,
} from '../repo/index.js';
import { restoreSnapshot } from '../restore/index.js';
import { backupFile, seededBytes, tempFolders, withRepo } from '../testing/index.js';

const tempFolder = tempFolders();

const KiB = 1024;
const MiB = 1024 * KiB;
const kdf = { N: 1024, r: 8, p: 1 };

async function image(size: number, data: Buffer): Promise<string> {
  const path = join(await tempFolder('coffer-v2d-img'), 'disk.raw');
  await writeFile(path, '');
  await truncate(path, size);
  const handle = await open(path, 'r+');
  await handle.write(data, 0, data.length, 0);
  await handle.close();
  return path;
}

async function newRepo(format: 1 | 2 = 2): Promise<{ backend: LocalBackend; root: string }> {
  const root = await tempFolder('coffer-v2d-repo');
  const backend = new LocalBackend(root);
  await initRepository(backend, { passphrase: 'pw', kdf, blockSize: 64 * KiB, format });
  return { backend, root };
}



async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) if (entry.isFile()) out.push(join(entry.parentPath, entry.name));
  return out.sort();
}

async function restored(repo: Repository, snapshot: Parameters<typeof restoreSnapshot>[1]): Promise<Buffer> {
  const to = join(await tempFolder('coffer-v2d-out'), 'disk.raw');
  await restoreSnapshot(repo, snapshot, { to });
  return readFile(to);
}

test('format 2: one corrupt byte in a pack is found by verify down to the frame\'s chunks and their byte ranges, then healed by the next backup', async () => {
  const data = seededBytes(11, 3 * MiB);
  const path = await image(4 * MiB, data);
  const { backend, root } = await newRepo();
  await withRepo(backend, async (repo) => {
    const first = await backupFile(repo, 'vm', path);
    assert.deepEqual((await verifyRepository(repo, { readData: true, now: () => new Date() })).damaged, []);
    const [pack] = await files(join(root, 'packs'));
    const handle = await open(pack as string, 'r+');
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, 100); // inside the first frame (the pack header is 8 bytes)
    byte[0] = (byte[0] as number) ^ 0xff;
    await handle.write(byte, 0, 1, 100);
    await handle.close();

    const report = await verifyRepository(repo, { readData: true, now: () => new Date() });
    // The pack's first frame holds 8 blocks of 64 KiB (which 8 depends on the order the
    // blocks came in: groups of 4 read together): each is named, with its range.
    assert.equal(report.damaged.length, 8);
    assert.ok(report.damaged.every((d) => d.kind === 'chunk' && d.problem === 'corrupt' && d.message.includes('packs/')), JSON.stringify(report.damaged[0]));
    assert.deepEqual(report.affected.map((a) => [a.snapshot, a.disk]), [[first.id, 'disk0']]);
    const ranges = report.affected[0]?.ranges ?? [];
    assert.equal(ranges.reduce((sum, r) => sum + r.end - r.start, 0), 512 * KiB);
    assert.ok(ranges.every((r) => r.start % (256 * KiB) === 0), JSON.stringify(ranges));
    assert.equal(report.quarantined, 8);
    await assert.rejects(restored(repo, first), (e) => isCofferError(e, 'E_CORRUPT_OBJECT') && /disk disk0: chunk [0-9a-f]{64} for bytes \d+-\d+ is corrupt/.test(e.message));

    // The next backup stores the damaged blocks again (never reusing a quarantined id) …
    const second = await backupFile(repo, 'vm', path);
    assert.equal(second.stats.bytesNew, 512 * KiB);
    // … and the first snapshot reads them from their new place.
    assert.ok((await restored(repo, first)).equals(await readFile(path)));
    assert.deepEqual((await verifyRepository(repo, { readData: true, now: () => new Date() })).damaged, []);
  });
});

test('format 2: a lost index is rebuilt from the pack trailers, and deduplication across VMs works again', async () => {
  const data = seededBytes(12, 2 * MiB);
  const path = await image(4 * MiB, data);
  const clonePath = await image(4 * MiB, data);
  const { backend, root } = await newRepo();
  await withRepo(backend, async (repo) => {
    await backupFile(repo, 'template', path);
  });
  await rm(join(root, 'segments'), { recursive: true });
  await withRepo(new LocalBackend(root), async (repo) => {
    const report = await rebuildChunkIndex(repo);
    assert.deepEqual({ ...report, unreadable: report.unreadable.length }, { packs: 1, chunks: 32, segmentsWritten: 1, segmentsRemoved: 0, unreadable: 0 });
    const clone = await backupFile(repo, 'clone', clonePath);
    assert.equal(clone.stats.bytesNew, 0);
    assert.ok((await restored(repo, clone)).equals(await readFile(clonePath)));
  });
});

test('format 2: verify --stored vouches for packs and segments; Object Lock needs a store that locks', async () => {
  const path = await image(1 * MiB, seededBytes(13, 300 * KiB));
  const { backend } = await newRepo();
  await withRepo(backend, async (repo) => {
    await backupFile(repo, 'vm', path);
    const stored = await verifyStored(backend, { trust: repo.storedDigestFingerprint as string });
    assert.deepEqual([stored.damaged.length, stored.notCovered.length], [0, 0]);
  });
  const locked = new LocalBackend(await tempFolder('coffer-v2d-lock'));
  // Format 2 takes Object Lock (src/cli/format2-s3.integ.test.ts); a local directory cannot lock, whatever the format.
  await assert.rejects(initRepository(locked, { passphrase: 'pw', kdf, format: 2, objectLock: { mode: 'governance', days: 1 } }), (e) => isCofferError(e, 'E_USAGE') && /cannot lock objects/.test(e.message));
});

test('a format newer than this Coffer reads is refused with E_REPO_VERSION, naming the format', async () => {
  const { backend } = await newRepo();
  const config = JSON.parse((await backend.get('config')).toString('utf8')) as Record<string, unknown>;
  await backend.put('config', Buffer.from(JSON.stringify({ ...config, version: 3 })));
  await assert.rejects(openRepository(backend, { passphrase: 'pw' }), (e) => isCofferError(e, 'E_REPO_VERSION') && /uses repository format 3; this Coffer reads up to 2/.test(e.message));
});
