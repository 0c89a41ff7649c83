import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { makeTempDir, seededBytes } from '../testing/index.js';
import type { Backend } from './backend/backend.js';
import { LocalBackend } from './backend/local-backend.js';
import { FrameReader, frameSlotBytes, imageFrameSlotBytes } from './frame-reader.js';
import { PackWriter } from './pack-writer.js';
import { initRepository, openRepository, type Repository } from './repository.js';

const BLOCK = 256 * 1024;

/** Random 256 KiB blocks: zstd does not shrink them, so each frame is stored raw. */
function block(i: number): { id: Buffer; data: Buffer } {
  const data = seededBytes(1000 + i, BLOCK);
  return { id: createHash('sha256').update(data).digest(), data };
}

/** The local backend, keeping the memory each ranged read was asked to land in. */
function recordingLandings(inner: LocalBackend): { backend: Backend; landings: (ArrayBufferLike | undefined)[] } {
  const landings: (ArrayBufferLike | undefined)[] = [];
  const backend = new Proxy(inner, {
    get(target, property) {
      if (property === 'getRange') {
        return (key: string, offset: number, length: number, into?: Uint8Array) => {
          landings.push(into?.buffer);
          return target.getRange(key, offset, length, into);
        };
      }
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { backend, landings };
}

let root: { path: string; remove(): Promise<void> };
let entries: Buffer[];
const repos: Repository[] = [];

before(async () => {
  // Unencrypted: a frame stored raw is its own plaintext, so a plaintext opened outside a slot
  // can be a view of the bytes read — the case where reusing read memory would go wrong.
  root = await makeTempDir('coffer-frame-reader');
  await initRepository(new LocalBackend(root.path), { passphrase: null, blockSize: BLOCK, format: 2 });
  const repo = await openRepository(new LocalBackend(root.path), { threads: 2 });
  repos.push(repo);
  const writer = new PackWriter(repo, { blocksPerFrame: 1 });
  const placed: Promise<Buffer>[] = [];
  for (let i = 0; i < 12; i++) {
    const { id, data } = block(i);
    placed.push((await writer.add(id, data)).placed);
  }
  await writer.finish();
  entries = await Promise.all(placed);
});

after(async () => {
  await Promise.allSettled(repos.map((repo) => repo.close()));
  await root.remove();
});

for (const onMainThread of [false, true]) {
  test(`frames read into reused shared memory, also those opened outside the cache's slots, keep their bytes (${onMainThread ? 'opened on the main thread' : 'opened on the codec threads'})`, async () => {
    const { backend, landings } = recordingLandings(new LocalBackend(root.path));
    const repo = await openRepository(backend, { threads: 2 });
    repos.push(repo);
    // A cache of one slot: once the first frame is pinned there, every other frame is opened
    // into memory of its own, while the read buffers go from frame to frame.
    const reader = new FrameReader(repo, 1, onMainThread);
    const first = await reader.pin(entries[0] as Buffer, BLOCK);
    const others = [];
    for (let i = 1; i < 12; i++) others.push(await reader.pin(entries[i] as Buffer, BLOCK));
    assert.ok(first.view.equals(block(0).data), 'the frame in the slot');
    others.forEach((pinned, i) => assert.ok(pinned.view.equals(block(i + 1).data), `frame ${i + 1}, opened outside the slots, is intact after the later reads`));
    for (const pinned of [first, ...others]) pinned.release();

    const target = Buffer.alloc(BLOCK);
    for (const i of [5, 0, 11]) {
      await reader.read(entries[i] as Buffer, target);
      assert.ok(target.equals(block(i).data), `block ${i} reads back`);
    }
    assert.ok(landings.length >= 12);
    assert.ok(landings.every((memory) => memory instanceof SharedArrayBuffer), 'every frame is read into shared memory');
    assert.ok(new Set(landings).size <= 4, `${new Set(landings).size} read buffers for ${landings.length} frames`);
  });
}

test('slots smaller than the frames: the first frames open into memory of their own, then the slots grow to the largest frame; every read right, the small slots given back', async () => {
  const repo = await openRepository(new LocalBackend(root.path), { threads: 2 });
  repos.push(repo);
  const small = 64 * 1024; // less than any of these frames (a 256 KiB block and its table)
  const reader = new FrameReader(repo, 4 * 1024 * 1024, false, small);
  const target = Buffer.alloc(BLOCK);
  for (const i of [0, 1, 2]) {
    await reader.read(entries[i] as Buffer, target);
    assert.ok(target.equals(block(i).data), `block ${i} reads back from memory of its own`);
  }
  assert.equal(reader.budgetBytes, 4 * 1024 * 1024, 'sixty-four slots of 64 KiB, not grown yet');
  for (let i = 3; i < 12; i++) {
    await reader.read(entries[i] as Buffer, target);
    assert.ok(target.equals(block(i).data), `block ${i} reads back`);
  }
  const largest = frameSlotBytes(BLOCK);
  assert.equal(reader.budgetBytes, Math.floor((4 * 1024 * 1024) / largest) * largest, 'grown to slots of the largest frame');
  assert.equal(reader.allocatedBytes, largest, 'one slot of the new size; the small ones were dropped as their frames left');
  assert.equal(reader.fetched.frames, 12);
  await reader.read(entries[11] as Buffer, target);
  assert.equal(reader.fetched.frames, 12, 'the last frame was kept in the grown slot');
});

test('an image disk\'s slot holds its frames, not the largest any backup writes: 8 blocks of a 64 KiB repository, 32 of a 64 KiB tracked disk in a 256 KiB one', () => {
  const KiB = 1024;
  assert.ok(imageFrameSlotBytes(64 * KiB, 64 * KiB) < 600 * KiB, `${imageFrameSlotBytes(64 * KiB, 64 * KiB)} bytes`);
  assert.ok(imageFrameSlotBytes(64 * KiB, 64 * KiB) >= 8 * 64 * KiB + 8 * 36 + 8);
  assert.ok(frameSlotBytes(64 * KiB) > 2 * 1024 * KiB);
  assert.ok(imageFrameSlotBytes(256 * KiB, 64 * KiB) >= 32 * 64 * KiB + 32 * 36 + 8);
  assert.ok(imageFrameSlotBytes(256 * KiB, 256 * KiB) >= 8 * 256 * KiB + 8 * 36 + 8);
  assert.ok(imageFrameSlotBytes(256 * KiB, 256 * KiB) <= frameSlotBytes(256 * KiB));
});

test('a reader on the main thread keeps decoded frames up to its budget in bytes, the least recent dropped first', async () => {
  const repo = await openRepository(new LocalBackend(root.path), { threads: 2 });
  repos.push(repo);
  const target = Buffer.alloc(BLOCK);
  const readAll = async (reader: FrameReader, order: number[]) => {
    for (const i of order) {
      await reader.read(entries[i] as Buffer, target);
      assert.ok(target.equals(block(i).data), `block ${i} reads back`);
    }
  };
  // Twelve frames of 256 KiB fit in 4 MiB: read twice, each is fetched once.
  const roomy = new FrameReader(repo, 4 * 1024 * 1024, true);
  await readAll(roomy, [...entries.keys()]);
  await readAll(roomy, [...entries.keys()].reverse());
  assert.equal(roomy.fetched.frames, 12);
  // Room for three (a frame's plaintext is its block and a table): frames 9-11 are kept, and
  // reading 0-2 again fetches them again.
  const tight = new FrameReader(repo, 3 * BLOCK + 4096, true);
  await readAll(tight, [...entries.keys()]);
  assert.equal(tight.fetched.frames, 12);
  await readAll(tight, [11, 10, 9]);
  assert.equal(tight.fetched.frames, 12, 'the three most recent frames are kept');
  await readAll(tight, [0, 1, 2]);
  assert.equal(tight.fetched.frames, 15);
  await readAll(tight, [1]);
  assert.equal(tight.fetched.frames, 15);
});
