import assert from 'node:assert/strict';
import { access, open, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { backupVm } from '../backup/index.js';
import { isCofferError } from '../errors/index.js';
import { initRepository, LocalBackend, openRepository, type Backend, type Repository } from '../repo/index.js';
import { openImageSource } from '../source/index.js';
import { seededBytes, tempFolders } from '../testing/index.js';
import { restoreSnapshot } from './index.js';

const tempFolder = tempFolders();
const KiB = 1024;
const MiB = 1024 * KiB;

/** The local backend, counting the ranged reads made through it and the memory they land in. */
function counting(backend: LocalBackend): { backend: Backend; reads: { calls: number; bytes: number; landings: Set<ArrayBufferLike | undefined> } } {
  const reads = { calls: 0, bytes: 0, landings: new Set<ArrayBufferLike | undefined>() };
  const counted = new Proxy(backend, {
    get(target, property) {
      if (property === 'getRange') {
        return async (key: string, offset: number, length: number, into?: Uint8Array) => {
          reads.calls += 1;
          reads.bytes += length;
          reads.landings.add(into?.buffer);
          return target.getRange(key, offset, length, into);
        };
      }
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { backend: counted, reads };
}

async function backupImage(repo: Repository, path: string) {
  const source = await openImageSource('vm', [path]);
  try {
    return await backupVm(repo, source);
  } finally {
    await source.close();
  }
}

async function packFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(root, 'packs'), { withFileTypes: true, recursive: true })) if (entry.isFile()) out.push(join(entry.parentPath, entry.name));
  return out.sort();
}

/** A 24 MiB disk, 20 MiB of it incompressible (3 packs of 64 KiB blocks), backed up, then 24 scattered 4 KiB writes backed up again. */
async function fullAndScattered(): Promise<{ root: string; path: string; full: Buffer; changed: Buffer }> {
  const root = await tempFolder('coffer-rf-repo');
  await initRepository(new LocalBackend(root), { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * KiB, format: 2 });
  const path = join(await tempFolder('coffer-rf-img'), 'disk.raw');
  const full = Buffer.alloc(24 * MiB);
  seededBytes(5, 20 * MiB).copy(full);
  await writeFile(path, full);
  const changed = Buffer.from(full);
  for (let i = 0; i < 24; i++) seededBytes(100 + i, 4 * KiB).copy(changed, i * 800 * KiB + 1000);
  return { root, path, full, changed };
}

test('format 2 restore by frames: a scattered incremental restores byte for byte, each frame read once, the frames that follow each other in a pack read together', async () => {
  const { root, path, full, changed } = await fullAndScattered();
  const repo = await openRepository(new LocalBackend(root), { passphrase: 'pw', threads: 2 });
  const [first, second] = await (async () => {
    try {
      const before = await backupImage(repo, path);
      await writeFile(path, changed);
      return [before, await backupImage(repo, path)];
    } finally {
      await repo.close();
    }
  })();
  const packs = await packFiles(root);
  const packBytes = (await Promise.all(packs.map(async (p) => (await stat(p)).size))).reduce((a, b) => a + b, 0);

  const { backend, reads } = counting(new LocalBackend(root));
  const reader = await openRepository(backend, { passphrase: 'pw', threads: 2 });
  try {
    const out = join(await tempFolder('coffer-rf-out'), 'second.raw');
    await restoreSnapshot(reader, second, { to: out });
    assert.ok((await readFile(out)).equals(changed), 'the incremental restores byte for byte');
    // 40 frames of the full (320 blocks, 8 per frame) and 3 of the 24 scattered blocks: the
    // old block-by-block path made one read per frame (43), and read a frame of scattered
    // blocks again for each block once it left its cache.
    assert.ok(reads.bytes <= packBytes, `read ${reads.bytes} bytes of ${packBytes} stored: no frame twice`);
    assert.ok(reads.calls <= Math.ceil(43 / 4) + packs.length + 1, `${reads.calls} ranged reads for 43 frames in ${packs.length} packs`);
    // Every read lands in one of a fixed set of shared buffers (one per span in flight: 2
    // threads + 1), not in fresh memory that lives until a worker's garbage collection.
    const landings = [...reads.landings];
    assert.ok(landings.every((buffer) => buffer instanceof SharedArrayBuffer), 'every span is read into shared memory');
    assert.ok(landings.length <= 3, `${landings.length} buffers for ${reads.calls} reads`);

    const again = join(await tempFolder('coffer-rf-out'), 'first.raw');
    await restoreSnapshot(reader, first, { to: again });
    assert.ok((await readFile(again)).equals(full), 'the full restores byte for byte');
  } finally {
    await reader.close();
  }
});

test('format 2 restore by frames: a pack cut short fails the restore naming the snapshot, disk, chunk and bytes, and leaves no file behind', async () => {
  const { root, path } = await fullAndScattered();
  const repo = await openRepository(new LocalBackend(root), { passphrase: 'pw', threads: 2 });
  try {
    const snapshot = await backupImage(repo, path);
    const [pack] = await packFiles(root);
    const size = (await stat(pack as string)).size;
    // The pack's last frames are gone; the frames before them still read.
    const handle = await open(pack as string, 'r+');
    await handle.truncate(Math.floor(size * 0.75));
    await handle.close();
    const out = join(await tempFolder('coffer-rf-out'), 'disk.raw');
    await assert.rejects(
      restoreSnapshot(repo, snapshot, { to: out }),
      (e) => (isCofferError(e, 'E_MISSING_OBJECT') || isCofferError(e, 'E_CORRUPT_OBJECT')) && /snapshot [0-9a-f]{8} disk disk0: chunk [0-9a-f]{64} for bytes \d+-\d+ is (missing|corrupt)/.test(e.message),
    );
    await assert.rejects(access(out), 'the half-written file is removed');
  } finally {
    await repo.close();
  }
  await truncate(path, 0);
});
