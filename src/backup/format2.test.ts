import assert from 'node:assert/strict';
import { open, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { initRepository, LocalBackend, repositoryStats, type Backend, type Repository } from '../repo/index.js';
import { restoreSnapshot } from '../restore/index.js';
import { backupFile, seededBytes, tempFolders, withRepo } from '../testing/index.js';

const tempFolder = tempFolders();

const KiB = 1024;
const MiB = 1024 * KiB;
const kdf = { N: 1024, r: 8, p: 1 };

/** Text-like bytes that zstd shrinks (a backup's usual data), different per seed. */
function compressible(seed: number, length: number): Buffer {
  const words = ['alpha ', 'beta ', 'gamma ', 'delta ', `v${seed} `, 'lorem ', 'ipsum\n'];
  const random = seededBytes(seed, length);
  const out = Buffer.alloc(length);
  let at = 0;
  for (let i = 0; at < length; i++) at += out.write(words[(random[i % length] as number) % words.length] as string, at);
  return out;
}

async function image(size: number, writes: { offset: number; data: Buffer }[], path?: string): Promise<string> {
  const file = path ?? join(await tempFolder('coffer-v2-img'), 'disk.raw');
  if (path === undefined) {
    await writeFile(file, '');
    await truncate(file, size);
  }
  const handle = await open(file, 'r+');
  for (const { offset, data } of writes) await handle.write(data, 0, data.length, offset);
  await handle.close();
  return file;
}

async function newRepo(encrypted = true): Promise<{ backend: LocalBackend; root: string }> {
  const root = await tempFolder('coffer-v2-repo');
  const backend = new LocalBackend(root);
  await initRepository(backend, { passphrase: encrypted ? 'pw' : null, kdf, blockSize: 64 * KiB, format: 2 });
  return { backend, root };
}



async function keys(backend: Backend, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of backend.list(prefix)) out.push(entry.key);
  return out.sort();
}

async function restoredBytes(repo: Repository, snapshot: Parameters<typeof restoreSnapshot>[1]): Promise<Buffer> {
  const to = join(await tempFolder('coffer-v2-out'), 'disk.raw');
  await restoreSnapshot(repo, snapshot, { to });
  return readFile(to);
}

test('format 2: a full backup goes into packs and index segments, no chunk objects, and restores byte for byte', async () => {
  const path = await image(24 * MiB, [
    { offset: 0, data: compressible(1, 5 * MiB) },
    { offset: 8 * MiB, data: seededBytes(2, 3 * MiB + 5000) }, // incompressible, ends inside a block
    { offset: 20 * MiB, data: compressible(3, 700 * KiB) },
  ]);
  const { backend } = await newRepo();
  await withRepo(backend, async (repo) => {
    const snapshot = await backupFile(repo, 'vm1', path);
    assert.deepEqual(await keys(backend, 'chunks/'), []);
    const packs = await keys(backend, 'packs/');
    assert.ok(packs.length >= 1 && packs.length <= 2, `${packs.length} packs`);
    assert.equal((await keys(backend, 'segments/')).length, 1);
    // Compressible data shrinks as a whole frame: far less stored than new.
    assert.ok(snapshot.stats.bytesStored < snapshot.stats.bytesNew * 0.7, `${snapshot.stats.bytesStored} stored of ${snapshot.stats.bytesNew}`);
    assert.ok((await restoredBytes(repo, snapshot)).equals(await readFile(path)));
    // stats counts the packs and segments as the chunks' storage.
    const stats = await repositoryStats(repo);
    assert.equal(stats.bytesUnique, snapshot.stats.bytesNew);
    assert.ok(stats.bytesStoredChunks >= snapshot.stats.bytesStored - 200_000 && stats.bytesStoredChunks <= snapshot.stats.bytesStored, `${stats.bytesStoredChunks} vs ${snapshot.stats.bytesStored}`);
    assert.equal(stats.chunks, snapshot.stats.bytesNew / (64 * KiB));
  });
});

test('format 2: an incremental stores only what changed, and both snapshots restore', async () => {
  const path = await image(16 * MiB, [{ offset: 0, data: compressible(4, 6 * MiB) }]);
  const { backend } = await newRepo();
  await withRepo(backend, async (repo) => {
    const first = await backupFile(repo, 'vm', path);
    const firstBytes = await readFile(path);
    await image(0, [{ offset: 1 * MiB + 100, data: seededBytes(5, 3000) }, { offset: 10 * MiB, data: seededBytes(6, 64 * KiB) }], path);
    const second = await backupFile(repo, 'vm', path);
    assert.equal(second.stats.bytesNew, 2 * 64 * KiB); // the block at 1 MiB, and the aligned one at 10 MiB
    assert.ok((await restoredBytes(repo, first)).equals(firstBytes));
    assert.ok((await restoredBytes(repo, second)).equals(await readFile(path)));
  });
});

test('format 2: a clone of another VM deduplicates through the index segments (nothing new stored)', async () => {
  const data = compressible(7, 4 * MiB);
  const a = await image(8 * MiB, [{ offset: 0, data }]);
  const b = await image(8 * MiB, [{ offset: 2 * MiB, data: data.subarray(0, 2 * MiB) }]);
  const { backend } = await newRepo();
  const packsAfterFirst = await withRepo(backend, async (repo) => {
    await backupFile(repo, 'template', a);
    return (await keys(backend, 'packs/')).length;
  });
  // A new process: only the repository's segments can know the template's chunks.
  await withRepo(backend, async (repo) => {
    const clone = await backupFile(repo, 'clone', b);
    assert.equal(clone.stats.bytesNew, 0);
    assert.equal((await keys(backend, 'packs/')).length, packsAfterFirst);
    assert.ok((await restoredBytes(repo, clone)).equals(await readFile(b)));
  });
});

test('format 2: an unencrypted repository round-trips (chunks rehashed on every read)', async () => {
  const path = await image(4 * MiB, [{ offset: 64 * KiB, data: compressible(8, 2 * MiB) }]);
  const { backend } = await newRepo(false);
  await withRepo(backend, async (repo) => {
    const snapshot = await backupFile(repo, 'plain', path);
    assert.ok((await restoredBytes(repo, snapshot)).equals(await readFile(path)));
  });
});
