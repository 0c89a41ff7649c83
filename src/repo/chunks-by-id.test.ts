import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { makeTempDir } from '../testing/index.js';
import { LocalBackend } from './backend/local-backend.js';
import { ChunksById, locateChunks } from './chunks-by-id.js';
import { PackWriter } from './pack-writer.js';
import { initRepository, openRepository, type Repository } from './repository.js';
import { isCofferError } from '../errors/index.js';

const dirs: { remove(): Promise<void> }[] = [];
after(() => Promise.all(dirs.map((d) => d.remove())));

async function v2Repo(): Promise<{ repo: Repository; root: string }> {
  const dir = await makeTempDir('coffer-chunks-by-id');
  dirs.push(dir);
  const backend = new LocalBackend(dir.path);
  await initRepository(backend, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, format: 2 });
  return { repo: await openRepository(backend, { passphrase: 'pw', threads: 1 }), root: dir.path };
}

/** Stores `chunks` in one pack of their own (and a segment); answers their ids. */
async function store(repo: Repository, chunks: Buffer[]): Promise<Buffer[]> {
  const writer = new PackWriter(repo);
  const ids = chunks.map((data) => repo.codec.idOf(data));
  for (const [i, data] of chunks.entries()) await writer.add(ids[i] as Buffer, data);
  await writer.finish();
  return ids;
}

async function packFiles(root: string): Promise<string[]> {
  return (await readdir(join(root, 'packs'), { recursive: true })).filter((name) => /[0-9a-f]{64}$/.test(name)).map((name) => join(root, 'packs', name));
}

test('chunks by id: read through the segments, new segments seen by an open reader, unknown ids missing', async () => {
  const { repo } = await v2Repo();
  try {
    const [a] = await store(repo, [Buffer.from('tree or file A')]);
    const reader = new ChunksById(repo);
    assert.equal((await reader.read(a as Buffer)).toString(), 'tree or file A');
    // A later backup's segment: the open reader reloads its table on the miss.
    const [b] = await store(repo, [Buffer.from('chunk B, stored later')]);
    assert.equal((await reader.read(b as Buffer)).toString(), 'chunk B, stored later');
    const into = Buffer.alloc(64);
    assert.equal(await reader.readInto(a as Buffer, into), 'tree or file A'.length);
    const unknown = repo.codec.idOf(Buffer.from('never stored'));
    await assert.rejects(reader.read(unknown), (error) => isCofferError(error, 'E_MISSING_OBJECT') && /no index segment names it/.test(error.message));
    // locateChunks: one pass over the segments, only the ids asked for.
    const found = await locateChunks(repo, new Set([(a as Buffer).toString('hex'), unknown.toString('hex')]));
    assert.deepEqual([...found.keys()], [(a as Buffer).toString('hex')]);
  } finally {
    await repo.close();
  }
});

test('chunks by id: a chunk stored again after its first pack was damaged is read from the second place', async () => {
  const { repo, root } = await v2Repo();
  try {
    const data = Buffer.from('x'.repeat(10_000));
    const [id] = await store(repo, [data]);
    await store(repo, [data]); // stored again (a backup after verify quarantined it)
    assert.equal((await new ChunksById(repo).locations(id as Buffer)).length, 2);
    // Each place damaged in turn (one of them is the place tried first): the other is read.
    for (const pack of await packFiles(root)) {
      const intact = await readFile(pack);
      const bytes = Buffer.from(intact);
      bytes.writeUInt8(bytes.readUInt8(20) ^ 0xff, 20); // inside the pack's only frame
      await writeFile(pack, bytes);
      assert.ok((await new ChunksById(repo).read(id as Buffer)).equals(data));
      await writeFile(pack, intact);
    }
    // Both damaged: the chunk is corrupt.
    for (const pack of await packFiles(root)) {
      const bytes = await readFile(pack);
      bytes.writeUInt8(bytes.readUInt8(20) ^ 0xff, 20);
      await writeFile(pack, bytes);
    }
    await assert.rejects(new ChunksById(repo).read(id as Buffer), (error) => isCofferError(error, 'E_CORRUPT_OBJECT'));
  } finally {
    await repo.close();
  }
});
