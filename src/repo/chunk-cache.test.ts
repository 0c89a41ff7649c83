import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { recordChunkDeletions } from './chunk-cache.js';
import { CHUNKS_PREFIX, ForwardingBackend, initRepository, LocalBackend, openRepository, quarantineChunk, type BackendEntry, type Repository } from './index.js';
import { chunkKey } from './layout.js';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** A backend that counts the lookups and listings it is asked for. */
class CountingBackend extends ForwardingBackend {
  has_ = 0;
  listings = 0;
  override has(key: string) {
    this.has_++;
    return this.inner.has(key);
  }
  override list(prefix: string): AsyncIterable<BackendEntry> {
    if (prefix === CHUNKS_PREFIX) this.listings++;
    return this.inner.list(prefix);
  }
}

const id = (n: number) => createHash('sha256').update(`chunk ${n}`).digest();
const hex = (n: number) => id(n).toString('hex');

async function setup(): Promise<{ backend: CountingBackend; cacheDir: string; open: (now?: Date, maxAgeMs?: number) => Promise<Repository> }> {
  const root = await mkdtemp(join(tmpdir(), 'coffer-chunk-cache-'));
  dirs.push(root);
  const backend = new CountingBackend(new LocalBackend(join(root, 'repo')));
  // Format 1: the chunk cache caches the ids of chunk objects (`chunks/`); in format 2 the
  // same folder caches index segments (segment-cache.test.ts).
  await initRepository(backend, { passphrase: null, format: 1 });
  for (const n of [1, 2, 3]) await backend.put(chunkKey(hex(n)), Buffer.from(`chunk ${n}`));
  backend.has_ = 0;
  const cacheDir = join(root, 'cache');
  const open = (now?: Date, maxAgeMs?: number) =>
    openRepository(backend, { chunkCache: { directory: cacheDir, ...(now ? { now: () => now } : {}), ...(maxAgeMs !== undefined ? { maxAgeMs } : {}) } });
  return { backend, cacheDir, open };
}

test('chunk cache: one listing, then answers without asking the backend; the next process reads the file', async () => {
  const { backend, open } = await setup();
  const repo = await open();
  assert.equal(await repo.hasChunk(id(1)), true);
  assert.equal(await repo.hasChunk(id(3)), true);
  assert.equal(await repo.hasChunk(id(4)), false);
  await repo.putChunk(id(4), Buffer.from('chunk 4'));
  assert.equal(await repo.hasChunk(id(4)), true);
  assert.deepEqual([backend.has_, backend.listings], [0, 1]);
  await repo.close();

  const next = await open();
  for (const n of [1, 2, 3, 4]) assert.equal(await next.hasChunk(id(n)), true, `chunk ${n}`);
  assert.equal(await next.hasChunk(id(5)), false);
  assert.deepEqual([backend.has_, backend.listings], [0, 1], 'no second listing');
  await next.close();
});

test('chunk cache: after chunks are deleted (prune, quarantine), it is rebuilt and never claims a deleted chunk', async () => {
  const { backend, open } = await setup();
  const first = await open();
  assert.equal(await first.hasChunk(id(2)), true);
  await first.close();
  // What prune does: a new deletions token, then the deletes.
  await recordChunkDeletions(backend);
  await backend.delete(chunkKey(hex(2)));
  const second = await open();
  assert.equal(await second.hasChunk(id(2)), false);
  assert.equal(await second.hasChunk(id(1)), true);
  assert.equal(backend.listings, 2);
  await second.close();
  // Quarantine by verify goes the same way.
  await quarantineChunk(second, id(1), new Date());
  const third = await open();
  assert.equal(await third.hasChunk(id(1)), false);
  assert.equal(backend.listings, 3);
  await third.close();
});

test('chunk cache: chunks deleted while a process used it: its file is dropped, not saved', async () => {
  const { backend, cacheDir, open } = await setup();
  const repo = await open();
  assert.equal(await repo.hasChunk(id(3)), true);
  await repo.putChunk(id(7), Buffer.from('chunk 7'));
  await recordChunkDeletions(backend); // a prune elsewhere, after this process's lease ended
  await repo.close();
  assert.deepEqual(await readdir(cacheDir).then((d) => d.length).catch(() => 0), 0);
});

test('chunk cache: a file older than the maximum age, or damaged, is rebuilt from a listing', async () => {
  const { backend, cacheDir, open } = await setup();
  const day0 = new Date('2026-11-01T00:00:00Z');
  const repo = await open(day0, 3600_000);
  assert.equal(await repo.hasChunk(id(1)), true);
  await repo.close();
  const sameHour = await open(new Date(day0.getTime() + 1800_000), 3600_000);
  assert.equal(await sameHour.hasChunk(id(1)), true);
  assert.equal(backend.listings, 1);
  await sameHour.close();
  // Someone deletes a chunk by hand: noticed once the file is older than the maximum age.
  await backend.delete(chunkKey(hex(1)));
  const later = await open(new Date(day0.getTime() + 7200_000), 3600_000);
  assert.equal(await later.hasChunk(id(1)), false);
  assert.equal(backend.listings, 2);
  await later.close();

  const [repositoryDir] = await readdir(cacheDir);
  const file = join(cacheDir, repositoryDir as string, 'chunks');
  const bytes = await readFile(file);
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1; // one id changes
  await writeFile(file, bytes);
  const damaged = await open(new Date(day0.getTime() + 7300_000), 3600_000);
  assert.equal(await damaged.hasChunk(id(3)), true);
  assert.equal(backend.listings, 3, 'the damaged file was not trusted');
  await damaged.close();
});
