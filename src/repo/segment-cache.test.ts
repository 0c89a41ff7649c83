/**
 * The local copy of index segments (segment-cache.ts) over a real local backend: what it
 * spares (a GET per segment seen before), and that it can never answer wrong — a damaged
 * file is read again from the store, a segment gone from the store is dropped from the cache
 * at the next full listing, other keys pass through. End to end on S3 (the requests a format 2
 * backup makes with and without the cache): src/cli/format2-s3.integ.test.ts.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { makeTempDir } from '../testing/index.js';
import { LocalBackend } from './backend/local-backend.js';
import type { Backend, BackendEntry } from './backend/backend.js';
import { SEGMENTS_PREFIX, segmentKey } from './layout.js';
import { SegmentCachingBackend } from './segment-cache.js';

/** A real backend that records the keys it is asked to get. */
class GetRecordingBackend extends LocalBackend {
  gets: string[] = [];
  override get(key: string): Promise<Buffer> {
    this.gets.push(key);
    return super.get(key);
  }
}

let dir: { path: string; remove(): Promise<void> };
before(async () => {
  dir = await makeTempDir('coffer-segment-cache');
});
after(() => dir?.remove());

const hex = (n: number) => n.toString(16).padStart(2, '0').repeat(32);

async function drain(backend: Backend, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const entry of backend.list(prefix) as AsyncIterable<BackendEntry>) keys.push(entry.key);
  return keys.sort();
}

test('a segment put or read once is read from the cache afterwards; other keys are never cached', async () => {
  const store = new GetRecordingBackend(join(dir.path, 'store-1'));
  const cacheFolder = join(dir.path, 'cache-1');
  const writer = new SegmentCachingBackend(store, cacheFolder);
  const own = Buffer.from('segment written by this backup');
  await writer.put(segmentKey(hex(1)), own);
  await store.put(segmentKey(hex(2)), Buffer.from('segment written by another host'));
  await writer.put('snapshots/x', Buffer.from('manifest'));

  assert.deepEqual(await writer.get(segmentKey(hex(1))), own);
  assert.deepEqual(store.gets, [], 'its own segment: written through, never downloaded');
  assert.deepEqual((await writer.get(segmentKey(hex(2)))).toString(), 'segment written by another host');
  assert.deepEqual((await writer.get(segmentKey(hex(2)))).toString(), 'segment written by another host');
  assert.deepEqual(store.gets, [segmentKey(hex(2))], 'another host\'s segment: downloaded once');
  await writer.get('snapshots/x');
  await writer.get('snapshots/x');
  assert.deepEqual(store.gets.slice(1), ['snapshots/x', 'snapshots/x']);
  assert.deepEqual((await readdir(cacheFolder)).sort(), [hex(1), hex(2)]);

  // A second process on the same cache folder starts warm.
  const later = new GetRecordingBackend(join(dir.path, 'store-1'));
  await new SegmentCachingBackend(later, cacheFolder).get(segmentKey(hex(2)));
  assert.deepEqual(later.gets, []);
});

test('a damaged cache file is read again from the store; a segment gone from the store leaves the cache at the next full listing', async () => {
  const store = new GetRecordingBackend(join(dir.path, 'store-2'));
  const cacheFolder = join(dir.path, 'cache-2');
  const cached = new SegmentCachingBackend(store, cacheFolder);
  for (const n of [1, 2, 3]) await cached.put(segmentKey(hex(n)), Buffer.from(`segment ${n}`));

  const file = join(cacheFolder, hex(1));
  const bytes = await readFile(file);
  bytes.writeUInt8((bytes.at(-1) ?? 0) ^ 1, bytes.length - 1);
  await writeFile(file, bytes);
  assert.equal((await cached.get(segmentKey(hex(1)))).toString(), 'segment 1', 'the store\'s bytes, not the damaged copy');
  assert.deepEqual(store.gets, [segmentKey(hex(1))]);
  assert.equal((await cached.get(segmentKey(hex(1)))).toString(), 'segment 1');
  assert.equal(store.gets.length, 1, 'the copy was repaired');

  await store.delete(segmentKey(hex(2))); // e.g. repair --index on another host
  await cached.delete(segmentKey(hex(3))); // through the cache
  assert.deepEqual((await readdir(cacheFolder)).sort(), [hex(1), hex(2)]);
  assert.deepEqual(await drain(cached, SEGMENTS_PREFIX), [segmentKey(hex(1))]);
  assert.deepEqual(await readdir(cacheFolder), [hex(1)], 'the listing dropped what the store no longer has');
});
