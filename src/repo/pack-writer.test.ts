import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { RateLimiter } from '../concurrency/index.js';
import { isCofferError } from '../errors/index.js';
import { makeTempDir, seededBytes } from '../testing/index.js';
import type { Backend, BackendEntry } from './backend/backend.js';
import { FaultyBackend } from './backend/faulty-backend.js';
import { LocalBackend } from './backend/local-backend.js';
import { RateLimitedBackend } from './backend/rate-limited-backend.js';
import { decodeLocatedEntry } from './format/located-entry.js';
import { FrameReader } from './frame-reader.js';
import { PACK_DEFAULTS, PackWriter } from './pack-writer.js';
import { initRepository, openRepository, type Repository } from './repository.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 256 * KiB;

/** Puts of packs wait until the test opens the gate; counts the puts running at once. */
class GatedBackend implements Backend {
  running = 0;
  peak = 0;
  private gate: Promise<void>;
  open!: () => void;

  constructor(private readonly inner: Backend) {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }
  get location(): string {
    return this.inner.location;
  }
  async put(key: string, data: Uint8Array): Promise<void> {
    if (!key.startsWith('packs/')) return this.inner.put(key, data);
    this.running += 1;
    this.peak = Math.max(this.peak, this.running);
    try {
      await this.gate;
      await this.inner.put(key, data);
    } finally {
      this.running -= 1;
    }
  }
  create(key: string, data: Uint8Array): Promise<boolean> {
    return this.inner.create(key, data);
  }
  get(key: string): Promise<Buffer> {
    return this.inner.get(key);
  }
  getRange(key: string, offset: number, length: number): Promise<Buffer> {
    return (this.inner.getRange as NonNullable<Backend['getRange']>).call(this.inner, key, offset, length);
  }
  has(key: string): Promise<boolean> {
    return this.inner.has(key);
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
  list(prefix: string): AsyncIterable<BackendEntry> {
    return this.inner.list(prefix);
  }
  sync(): Promise<void> {
    return this.inner.sync();
  }
}

/** Distinct 256 KiB blocks, mostly random (frames stored raw), one in 8 text (zstd shrinks it). */
function block(i: number): { id: Buffer; data: Buffer } {
  const data = i % 8 !== 7 ? seededBytes(i, BLOCK) : Buffer.alloc(BLOCK, `block ${i} of the pack writer test\n`);
  return { id: createHash('sha256').update(data).digest(), data };
}

let root: { path: string; remove(): Promise<void> };
let local: LocalBackend;
const repos: Repository[] = [];

before(async () => {
  root = await makeTempDir('coffer-pack-writer');
  local = new LocalBackend(root.path);
  await initRepository(local, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: BLOCK, format: 2 });
});

after(async () => {
  await Promise.allSettled(repos.map((repo) => repo.close()));
  await root.remove();
});

async function open(backend: Backend): Promise<Repository> {
  const repo = await openRepository(backend, { passphrase: 'pw', threads: 2 });
  repos.push(repo);
  return repo;
}

test('a stalled backend stops the staging once the budget is in flight: no more memory, one pack PUT at a time', async () => {
  const gated = new GatedBackend(local);
  const repo = await open(gated);
  const writer = new PackWriter(repo, { packSize: 4 * MiB });
  const staged: { placed: Promise<Buffer>; ready: Promise<void>; done: boolean }[] = [];
  // 48 MiB of blocks offered at once: far more than the writer's budget (5 slots of ~2.3 MiB
  // and 2 pack buffers of ~6.5 MiB).
  for (let i = 0; i < 192; i++) {
    const { id, data } = block(i);
    const one = { ...writer.stage(id, data), done: false };
    void one.ready.then(() => (one.done = true), () => undefined);
    staged.push(one);
  }
  // Wait until the staging stops moving: the first pack's PUT hangs, so the next pack
  // fills, its frames' slots stay busy, and the staging waits for a free slot.
  let before = -1;
  const deadline = Date.now() + 20_000;
  for (let quiet = 0; quiet < 10 || gated.running === 0; ) {
    assert.ok(Date.now() < deadline, 'the writer neither stopped nor reached the backend within 20 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const now = staged.filter((s) => s.done).length;
    quiet = now === before ? quiet + 1 : 0;
    before = now;
  }
  const copied = staged.filter((s) => s.done).length;
  // At most 2 packs of ~24 blocks (frames of ~1.8 MiB), 4 frames sealing and 1 staging (8 blocks each).
  assert.ok(copied >= 16 && copied <= 96, `${copied} blocks were copied while the backend was stalled`);
  assert.equal(gated.running, 1, 'exactly one pack PUT waits on the backend');
  assert.ok(writer.held.allocatedBytes <= writer.memoryBudget, `${writer.held.allocatedBytes} bytes allocated, budget ${writer.memoryBudget}`);
  assert.ok(writer.memoryBudget < 30 * MiB);

  gated.open();
  await Promise.all(staged.map((s) => s.ready));
  await writer.finish();
  const entries = await Promise.all(staged.map((s) => s.placed));
  assert.equal(gated.peak, PACK_DEFAULTS.uploads, 'never more pack PUTs at once than allowed');
  assert.ok(writer.held.allocatedBytes <= writer.memoryBudget);
  assert.ok(writer.stored.packs >= 6, `${writer.stored.packs} packs`);

  // Every chunk reads back from where its entry says.
  const reader = new FrameReader(repo, 4 * 2.5 * MiB);
  const target = Buffer.alloc(BLOCK);
  for (const i of [0, 1, 77, 190, 191]) {
    await reader.read(entries[i] as Buffer, target);
    assert.ok(target.equals(block(i).data), `block ${i} reads back`);
  }
  assert.ok(reader.allocatedBytes <= 4 * 2.5 * MiB, 'the frame cache stays within its bytes');
});

test('a slow backend (4 MiB/s) holds the writer to its budget, and every chunk is placed', async () => {
  const slow = new RateLimitedBackend(local, { upload: new RateLimiter({ bytesPerSecond: 4 * MiB }) });
  const repo = await open(slow);
  const writer = new PackWriter(repo, { packSize: 2 * MiB });
  const placed: Promise<Buffer>[] = [];
  for (let i = 200; i < 248; i++) {
    const { id, data } = block(i);
    placed.push((await writer.add(id, data)).placed);
  }
  await writer.finish();
  assert.equal((await Promise.all(placed)).length, 48);
  assert.ok(writer.held.allocatedBytes <= writer.memoryBudget, `${writer.held.allocatedBytes} bytes allocated, budget ${writer.memoryBudget}`);
  assert.equal(writer.held.peakUploads, PACK_DEFAULTS.uploads);
});

test('a failing pack PUT rejects the waiting staging and every pending chunk: no hang', async () => {
  const faulty = new FaultyBackend(local, [{ method: 'put', keyPrefix: 'packs/', nth: 2, code: 'E_BACKEND_IO' }]);
  const repo = await open(faulty);
  const writer = new PackWriter(repo, { packSize: 2 * MiB });
  const staged: { placed: Promise<Buffer>; ready: Promise<void> }[] = [];
  for (let i = 300; i < 400; i++) {
    const { id, data } = block(i);
    staged.push(writer.stage(id, data));
  }
  const readies = await Promise.allSettled(staged.map((s) => s.ready));
  assert.ok(readies.some((r) => r.status === 'rejected'), 'the staging behind the failure is refused');
  await assert.rejects(writer.finish(), (error) => isCofferError(error, 'E_BACKEND_IO'));
  const placements = await Promise.allSettled(staged.map((s) => s.placed));
  assert.ok(placements.some((p) => p.status === 'fulfilled'), 'the first pack was stored');
  const failed = placements.filter((p) => p.status === 'rejected');
  assert.ok(failed.length > 0);
  for (const p of failed) assert.ok(isCofferError((p as PromiseRejectedResult).reason, 'E_BACKEND_IO'));
  assert.deepEqual(faulty.unexercised(), []);
  await writer.abandon(new Error('backup failed')); // settles at once
});

test('a chunk larger than a frame slot (a large directory\'s tree) is sealed alone in a frame of its own, between ordinary frames, and reads back', async () => {
  const repo = await open(local);
  const writer = new PackWriter(repo);
  const big = Buffer.alloc(7 * MiB + 123, 'a tree of a directory with very many entries\n');
  const incompressible = seededBytes(4242, 3 * MiB); // stored raw: its sealed frame is larger than its plaintext
  const chunks = [block(500), { id: createHash('sha256').update(big).digest(), data: big }, block(501), block(502), { id: createHash('sha256').update(incompressible).digest(), data: incompressible }, block(503)];
  const placed = chunks.map(({ id, data }) => writer.stage(id, data));
  await Promise.all(placed.map((p) => p.ready));
  await writer.finish();
  const entries = await Promise.all(placed.map((p) => p.placed));
  const reader = new FrameReader(repo);
  for (const [i, { data }] of chunks.entries()) {
    const target = Buffer.alloc(data.length);
    await reader.read(entries[i] as Buffer, target);
    assert.ok(target.equals(data), `chunk ${i} (${data.length} bytes) reads back`);
  }
});

test('chunksPerPack closes a pack of small chunks once it holds that many: their entries come pack by pack, and every chunk reads back', async () => {
  const repo = await open(local);
  const writer = new PackWriter(repo, { blocksPerFrame: 64, chunksPerPack: 200 });
  const chunks = Array.from({ length: 1000 }, (_, i) => {
    const data = Buffer.from(`small file ${i} `.repeat(1 + (i % 7)));
    return { id: createHash('sha256').update(data).digest(), data };
  });
  const placed: Promise<Buffer>[] = [];
  for (const { id, data } of chunks) placed.push((await writer.add(id, data)).placed);
  await writer.finish();
  const entries = await Promise.all(placed);
  const packs = new Map<string, number>();
  for (const entry of entries) {
    const pack = decodeLocatedEntry(entry, 'entry').pack.toString('hex');
    packs.set(pack, (packs.get(pack) ?? 0) + 1);
  }
  // Frames of 64: a pack closes at the first frame that brings it to 200 or more (256). Frames
  // are appended as their sealing ends, which two workers may finish out of order: which
  // chunks share the short pack varies, the counts do not.
  assert.deepEqual([...packs.values()].sort((a, b) => b - a), [256, 256, 256, 232]);
  assert.equal(writer.stored.packs, 4);
  const reader = new FrameReader(repo);
  for (const [i, entry] of entries.entries()) {
    const out = Buffer.alloc((chunks[i] as { data: Buffer }).data.length);
    await reader.read(entry, out);
    assert.ok(out.equals((chunks[i] as { data: Buffer }).data), `chunk ${i}`);
  }
});
